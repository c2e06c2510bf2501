"""termshift: bit-exact HLS engines for DNNs in non-uniform number formats.

The package root only exposes the version; formats/, backends/ and the CLI own
the rest.
"""

__version__ = "0.1.0"
