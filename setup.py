"""Only what pyproject.toml cannot say: the wheel carries the shipped catalogue (styles/ and weights/ at the top of
the repository) as ``stylize/shipped/``, so an installed stylize has its styles (``catalogue.catalogue_root``)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

#: The shipped catalogue: styles' records and previews, networks, trunks and ONNX graphs; not the rows kept from
#: training in weights/trunks/*.unshipped/, nor the styles that left the catalogue (weights/unshipped/).
SHIPPED = ("styles/*.json", "styles/*.jpg", "weights/*.safetensors", "weights/*.onnx",
           "weights/trunks/*.safetensors", "weights/trunks/*.onnx")


class BuildWithCatalogue(build_py):
    def run(self) -> None:
        super().run()
        root, target = Path(__file__).parent, Path(self.build_lib) / "stylize" / "shipped"
        for pattern in SHIPPED:
            for source in root.glob(pattern):
                destination = target / source.relative_to(root)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)


setup(cmdclass={"build_py": BuildWithCatalogue})
