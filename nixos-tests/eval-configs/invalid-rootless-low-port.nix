# expect-assertion: ^services\.huggingface-tgi\.instances\.low\.port: port 80 is privileged, but this instance runs rootless
{ ... }:
{
  services.huggingface-tgi.instances.low = {
    model = "org/low";
    # rootless by default: no user or uid needed to be refused
    port = 80;
  };
}
