# A rootful instance on port 80: conmon holds the port, so the unit keeps CAP_NET_BIND_SERVICE.
{ ... }:
{
  services.huggingface-tgi.instances.web = {
    model = "org/web";
    port = 80;
    listenAddress = "0.0.0.0";
    rootful = true;
  };
}
