# Env providers: the JSON of each, only the fields written, and Nix paths
# given as strings WITHOUT being copied into the store.
let
  inherit (import ../support { }) lib;
  p = lib.envProviders;
  notCopied = s: {
    notInStore = builtins.substring 0 (builtins.stringLength builtins.storeDir) s != builtins.storeDir;
    absolute = builtins.substring 0 1 s == "/";
    noContext = !(builtins.hasContext s);
  };
in
{
  file = p.file { path = ".env"; };
  fileRequired = p.file { path = "~/.config/ci/tokens.env"; required = true; };
  filePath = notCopied (p.file { path = ./providers.nix; }).path;
  sops = p.sops { file = "secrets.sops.yaml"; };
  sopsAll = p.sops { file = "local.sops.env"; format = "dotenv"; required = false; };
  sopsPath = notCopied (p.sops { file = ./providers.nix; }).file;
  static = p.static { CI = "true"; PORT = 8080; DEBUG = false; };
  required = p.required [ "API_KEY" "REGION" ];
  command = p.command { command = "op inject -i ci.env.tpl"; };
  nullDropped = p.file { path = ".env"; required = null; };
  handWritten = lib.internal.providerJSON "test" { type = "file"; path = ".env"; };
}
