# expect-assertion: ^services\.huggingface-tgi\.instances\.online\.environment: HF_HUB_OFFLINE is set by the module: with downloadModel
# The model unit downloads and the server runs offline: environment cannot switch that off.
{ ... }:
{
  services.huggingface-tgi.instances.online = {
    model = "org/online";
    port = 8080;
    environment.HF_HUB_OFFLINE = "0";
  };
}
