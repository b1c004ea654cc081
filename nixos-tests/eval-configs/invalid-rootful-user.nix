# expect-assertion: ^services\.huggingface-tgi\.instances\.r\.user: user "tgi-r" runs rootless podman, but rootful = true runs it as root
{ ... }:
{
  services.huggingface-tgi.instances.r = {
    model = "org/r";
    port = 8080;
    rootful = true;
    user = "tgi-r";
  };
}
