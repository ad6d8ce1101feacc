# The bash of every action, with and without pkgs, for run.sh to
# shellcheck: { "<variant>/<step name>" = bash; }.
let
  support = import ./. { };
  variants = {
    host = support.lib.actions;
    pinned = (import ./. { pkgs = support.fakePkgs; }).lib.actions;
  };
  steps = a: [
    a.checkout
    (a.nixShell [ "jq" "curl" ])
    (a.setupNode { version = "20"; })
    (a.setupPython { version = "3.11"; })
    a.setupRust
    a.npmInstall
    a.npmTest
    a.npmBuild
    a.npmLint
    (a.sopsLoad { file = "secrets.sops.yaml"; format = "dotenv"; })
    (a.requireEnv [ "API_KEY" "DB_PASSWORD" ])
  ];
in
builtins.listToAttrs (builtins.concatLists (map
  (v: map (s: { name = "${v}/${s.name}"; value = s.bash; }) (steps variants.${v}))
  (builtins.attrNames variants)))
