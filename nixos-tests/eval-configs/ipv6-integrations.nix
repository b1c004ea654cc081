# An instance on the IPv6 wildcard: Prometheus and Open WebUI reach it on [::1].
{ ... }:
{
  services.huggingface-tgi.instances.v6 = {
    model = "org/v6";
    port = 8082;
    listenAddress = "::";
  };
  services.huggingface-tgi.prometheus.enable = true;
  services.huggingface-tgi.openWebui.enable = true;
  services.open-webui.enable = true;
  services.open-webui.port = 8095;
}
