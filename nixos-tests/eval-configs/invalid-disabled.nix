# expect-assertion: ^services\.huggingface-tgi\.instances\.off\.model: "not-a-model" is not a Hugging Face model id
# A disabled instance is still checked, as `tgi-nix validate` checks it.
{ ... }:
{
  services.huggingface-tgi.instances.off = {
    enable = false;
    model = "not-a-model";
    port = 8080;
  };
}
