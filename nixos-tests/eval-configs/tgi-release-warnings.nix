# Accepted with warnings: a TGI tag that was never released, a Llama 4 model on a release before
# 3.2.2, and two instances on overlapping GPUs; two that share on purpose (allowGpuSharing on both)
# and a digest-pinned image get none.
{ ... }:
{
  services.huggingface-tgi.instances = {
    scout = {
      model = "meta-llama/Llama-4-Scout-17B-16E-Instruct";
      port = 8085;
      image = "ghcr.io/huggingface/text-generation-inference:2.5.1";
      gpus = [ 0 1 ];
    };
    small = {
      model = "org/small";
      port = 8086;
      gpus = [ 1 ];
    };
    shared-a = {
      model = "org/a";
      port = 8087;
      gpus = [ 2 ];
      allowGpuSharing = true;
    };
    shared-b = {
      model = "org/b";
      port = 8088;
      gpus = [ 2 ];
      allowGpuSharing = true;
      image = "ghcr.io/huggingface/text-generation-inference@sha256:0000000000000000000000000000000000000000000000000000000000000000";
    };
  };
}
