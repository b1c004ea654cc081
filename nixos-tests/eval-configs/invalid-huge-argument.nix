# expect-assertion: ^services\.huggingface-tgi\.instances\.big\.extraArgs\[0\]: a value of 2097171 characters; at most 4096 are allowed
# A 2 MB argument is one assertion (core/sizes.nix), not a stack overflow in a regular expression.
{ ... }:
let
  double = s: s + s;
  # 2^21 characters
  huge = builtins.foldl' (s: _: double s) "a" (builtins.genList (i: i) 21);
in
{
  services.huggingface-tgi.instances.big = {
    model = "org/model";
    port = 8080;
    extraArgs = [ "--max-input-tokens=${huge}" ];
  };
}
