# expect-assertion: ^services\.huggingface-tgi\.instances\.chat\.port and services\.open-webui\.port are both 8080
# Open WebUI set by hand to the port of an instance: both cannot listen there (a default 8080
# would move to 3000, see the harness's `integrations` scenario).
{ ... }:
{
  services.huggingface-tgi.instances.chat = {
    model = "org/chat";
    port = 8080;
    listenAddress = "0.0.0.0";
  };
  services.huggingface-tgi.openWebui.enable = true;
  services.open-webui.enable = true;
  services.open-webui.port = 8080;
}
