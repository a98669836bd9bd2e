"""Build the optional C accelerator; everything else is configured in pyproject.toml.

``optional=True``: without a C compiler the package installs and runs on its pure-Python loader.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("asyncecto._speedups", ["asyncecto/_speedups.c"], optional=True)])
