"""GROOD's own science, torch-light: its vocabulary (:mod:`~grood.method.vocab`: prototype sources,
gradient targets, gradient-space names), the class and OOD prototypes
(:mod:`~grood.method.prototypes`), the NCP-loss gradients in closed form
(:mod:`~grood.method.gradients`) and their streamed store (:mod:`~grood.method.gradient_store`)."""
