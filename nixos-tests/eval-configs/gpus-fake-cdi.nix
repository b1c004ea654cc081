# The GPU set-up of the two-instances scenario under NixOS (nixos-tests/default.nix with fakeCdi):
# `gpus` ("all" and an index) with the NVIDIA toolkit forced off, because the test VM has no driver for
# its generator; a fixed fake nvidia.com/gpu spec in /etc/cdi stands in. The module then lists the CDI
# directories itself.
{ lib, ... }:
{
  hardware.nvidia-container-toolkit.enable = lib.mkForce false;
  services.huggingface-tgi.instances = {
    alpha = {
      model = "acme/alpha-7b";
      port = 8080;
      gpus = "all";
      allowGpuSharing = true;
    };
    beta = {
      model = "acme/beta-1b";
      port = 8085;
      gpus = [ 1 ];
      allowGpuSharing = true;
    };
  };
}
