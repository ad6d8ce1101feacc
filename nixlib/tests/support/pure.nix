# The workflow fixtures of tests/ whose JSON holds no store path,
# evaluated and compared with their .json by Nix alone: the flake's
# checks.nixlib uses this (no Nix is needed inside the build). The full
# suite, store paths included, is run.sh.
let
  dir = builtins.readDir ../.;
  names = builtins.filter
    (n: builtins.match ".*\\.json" n != null && dir.${n} == "regular")
    (builtins.attrNames dir);
  base = n: builtins.head (builtins.match "(.*)\\.json" n);
  pure = builtins.filter
    (n: builtins.match ".*/nix/store/.*" (builtins.readFile (../. + "/${n}")) == null)
    names;
  same = n: builtins.fromJSON (builtins.readFile (../. + "/${n}")) == import (../. + "/${base n}.nix");
in
{
  passed = builtins.length (builtins.filter same pure);
  failed = map base (builtins.filter (n: !same n) pure);
}
