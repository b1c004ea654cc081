# The few list and attribute-set helpers the core needs, written with `builtins` only so that
# `nix-instantiate --eval` runs the core without nixpkgs (same names and meaning as nixpkgs' lib).
let
  inherit (builtins)
    attrNames
    concatMap
    elem
    foldl'
    listToAttrs
    map
    match
    stringLength
    substring
    ;
in
rec {
  optional = cond: value: if cond then [ value ] else [ ];
  optionals = cond: values: if cond then values else [ ];
  optionalAttrs = cond: attrs: if cond then attrs else { };
  mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (attrNames attrs);
  filterAttrs =
    pred: attrs:
    listToAttrs (
      concatMap (name: optional (pred name attrs.${name}) {
        inherit name;
        value = attrs.${name};
      }) (attrNames attrs)
    );
  mapAttrs' = f: attrs: listToAttrs (map (name: f name attrs.${name}) (attrNames attrs));
  unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];
  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  # The text of `s` after the first `sep`, or null when `s` has none.
  afterFirst =
    sep: s:
    let
      m = match "[^${sep}]*${sep}(.*)" s;
    in
    if m == null then null else builtins.head m;
  # Every element of `xs` that occurs more than once, each listed once.
  duplicates = xs: unique (builtins.filter (x: builtins.length (builtins.filter (y: y == x) xs) > 1) xs);
  # Sum of a list of integers.
  sum = foldl' (a: b: a + b) 0;
}
