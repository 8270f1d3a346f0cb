"""The pipeline's stages, one module each: what each Snakemake rule runs, callable from Python.

Each stage reads its inputs, calls the science in the other grood modules and writes its outputs
atomically with provenance. Workflow scripts only unpack ``snakemake`` objects and call these.
A rule's ``code`` param hashes its stage module, so editing one stage re-runs that stage only.
"""
