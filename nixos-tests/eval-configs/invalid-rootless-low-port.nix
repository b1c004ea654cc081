# expect-assertion: ^services\.huggingface-tgi\.instances\.low\.port: port 80 is privileged, but a rootless instance
{ ... }:
{
  services.huggingface-tgi.instances.low = {
    model = "org/low";
    port = 80;
    user = "tgi-low";
    uid = 2010;
  };
}
