"""VM harness: a cached Debian trixie + podman 5 image booted under QEMU, driven like NixOS test VMs.

Example::

    with Machine() as machine:  # the image is built on first use and cached
        machine.wait_for_unit("multi-user.target")
        machine.succeed("podman run --rm --entrypoint true localhost/tgi-mock:latest")
"""

from .driver import run_test_script, script_globals, start_all, subtest
from .errors import (
    HostToolsMissing,
    MachineCrashed,
    MachineError,
    MachineTimeout,
    RequestedAssertionFailed,
    VmError,
)
from .host import ensure_host_tools
from .image import VmImage, ensure_image, image_key
from .machine import Machine
from .mockimage import IMAGE_REF as MOCK_IMAGE_REF
from .provision import (
    apply_firewall,
    install_cli,
    install_units,
    lock_module_loading_at_boot,
    reimport_mock_image,
    tag_mock_image,
    tag_mock_image_as,
    tag_mock_image_command,
)

__all__ = [
    "HostToolsMissing",
    "MOCK_IMAGE_REF",
    "Machine",
    "MachineCrashed",
    "MachineError",
    "MachineTimeout",
    "RequestedAssertionFailed",
    "VmError",
    "VmImage",
    "apply_firewall",
    "ensure_host_tools",
    "ensure_image",
    "image_key",
    "install_cli",
    "install_units",
    "lock_module_loading_at_boot",
    "reimport_mock_image",
    "run_test_script",
    "script_globals",
    "start_all",
    "subtest",
    "tag_mock_image",
    "tag_mock_image_as",
    "tag_mock_image_command",
]
