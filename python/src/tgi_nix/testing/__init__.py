"""Test support, apart from the product: the QEMU VM harness (`vm`) and the shared VM scenarios."""
