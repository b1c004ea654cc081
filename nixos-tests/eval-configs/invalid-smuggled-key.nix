# expect-assertion: ^services\.huggingface-tgi\.instances\.leak\.(extraArgs|environment): 
# An API key through extraArgs and a token through environment: both refused, naming the option.
{ ... }:
{
  services.huggingface-tgi.instances.leak = {
    model = "org/leak";
    port = 8080;
    extraArgs = [
      "--api-key"
      "not-in-the-store"
    ];
    environment.HF_TOKEN = "hf_notInTheStoreEither0123456789abcdef";
  };
}
