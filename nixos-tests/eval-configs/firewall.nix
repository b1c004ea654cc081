# openFirewall opens exactly the instance's port; an instance without it opens nothing.
{ ... }:
{
  services.huggingface-tgi.instances = {
    public = {
      model = "org/public";
      port = 8080;
      listenAddress = "0.0.0.0";
      openFirewall = true;
    };
    private = {
      model = "org/private";
      port = 8081;
    };
  };
}
