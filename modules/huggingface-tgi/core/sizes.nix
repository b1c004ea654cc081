# Size bounds, checked before every other rule. Nix's regular expressions recurse per character and
# overflow the stack on a string of about a megabyte ("stack overflow"), so while a value breaks a
# bound no other rule, guarantee or unit sees the spec (default.nix): the findings below are all
# that is reported.
#
# A finding: { path = "instances.<name>.<option>[index].<key>"; message = "..."; }.
let
  inherit (builtins)
    attrNames
    attrValues
    concatLists
    concatMap
    elemAt
    genList
    isAttrs
    isList
    isString
    length
    mapAttrs
    stringLength
    ;
  inherit (import ./prelude.nix) optional;
  inherit (import ./rules.nix) segment;

  # Characters in one string value (an argument, a path, an environment value, a name, a key).
  maxString = 4096;
  # Entries in one list or attribute set (extraArgs, environment, gpus, ...).
  maxEntries = 1024;

  # f name value for every attribute, concatenated; by value, not by looking the name up again (a name
  # with a NUL character, which JSON allows and Nix strings cannot hold, would not be found).
  eachAttr = f: attrs: concatLists (attrValues (mapAttrs f attrs));

  tooLong = path: what: s: {
    inherit path;
    message = "${what} of ${toString (stringLength s)} characters; at most ${toString maxString} are allowed";
  };
  tooMany = path: n: {
    inherit path;
    message = "${toString n} entries; at most ${toString maxEntries} are allowed";
  };

  value =
    path: v:
    if isString v then
      optional (stringLength v > maxString) (tooLong path "a value" v)
    else if isList v then
      if length v > maxEntries then
        [ (tooMany path (length v)) ]
      else
        concatMap (i: value "${path}[${toString i}]" (elemAt v i)) (genList (i: i) (length v))
    else if isAttrs v then
      let
        keys = attrNames v;
      in
      if length keys > maxEntries then
        [ (tooMany path (length keys)) ]
      else
        eachAttr (
          k: x: if stringLength k > maxString then [ (tooLong path "a key" k) ] else value "${path}.${segment k}" x
        ) v
    else
      [ ];
in
{
  inherit maxString maxEntries;

  # instances: name -> options. Every string, list and attribute set within bounds, names too.
  spec =
    instances:
    let
      names = attrNames instances;
    in
    if length names > maxEntries then
      [ (tooMany "instances" (length names)) ]
    else
      eachAttr (
        name: inst:
        if stringLength name > maxString then
          [ (tooLong "instances" "an instance name" name) ]
        else
          value "instances.${segment name}" inst
      ) instances;
}
