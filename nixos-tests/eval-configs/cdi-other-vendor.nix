# A CDI device of another vendor, no NVIDIA GPU: the module lists the CDI directories itself
# (with an NVIDIA GPU, the NVIDIA module's own entries serve, without duplicates).
{ ... }:
{
  services.huggingface-tgi.instances.amd = {
    model = "org/amd";
    port = 8089;
    cdiDevices = [ "amd.com/gpu=all" ];
  };
}
