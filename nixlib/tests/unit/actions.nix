# Actions: plain steps with the names and scripts expected, toolchains as
# deps when pkgs has them (and a host check when it does not, also for a
# nixpkgs alias that throws), paths not copied into the store. Running the
# scripts is run.sh's job (shellcheck, and the end-to-end run).
let
  support = import ../support { };
  plain = support.lib.actions;
  pinned = (import ../support { pkgs = support.fakePkgs; }).lib.actions;
  inherit (support) fakePkgs;
  contains = needle: s: builtins.replaceStrings [ needle ] [ "" ] s != s;
  drvs = step: map (d: d.drvPath) (step.deps or [ ]);
  all = a: [
    a.checkout
    (a.nixShell [ "jq" ])
    (a.setupNode { version = "20"; })
    (a.setupPython { version = "3.11"; })
    a.setupRust
    a.npmInstall
    a.npmTest
    a.npmBuild
    a.npmLint
    (a.sopsLoad { file = "secrets.sops.yaml"; })
    (a.requireEnv [ "API_KEY" ])
  ];
  sops = plain.sopsLoad { file = "s.env"; format = "dotenv"; };
  sopsPath = (plain.sopsLoad { file = ./actions.nix; }).bash;
  nix = plain.nixShell [ "curl" "python3Packages.pytest" "nixpkgs/nixos-24.05#jq" ];
  require = plain.requireEnv [ "API_KEY" "DB_PASSWORD" ];
in
{
  names = map (s: s.name) (all plain);
  fieldsPlain = map builtins.attrNames (all plain);
  fieldsPinned = map builtins.attrNames (all pinned);
  npm = map (s: s.bash) [ plain.npmTest plain.npmBuild plain.npmLint ];
  npmInstallUsesCi = contains "npm ci" plain.npmInstall.bash;
  checkoutReportsCommit = contains "git rev-parse HEAD" plain.checkout.bash;

  nixShell = {
    inherit (nix) name;
    appendsToJobPath = contains ">> \"$JOB_PATH\"" nix.bash;
    pinnable = contains "\${NIXFLOW_NIXPKGS:-nixpkgs}#$pkg" nix.bash;
    quoted = contains "'curl' 'python3Packages.pytest' 'nixpkgs/nixos-24.05#jq'" nix.bash;
    noDeps = !(nix ? deps);
  };

  setupNode = {
    plainChecksHost = contains "command -v node" (plain.setupNode { version = "20"; }).bash;
    plainNoDeps = !((plain.setupNode { version = "20"; }) ? deps);
    pinnedDep = drvs (pinned.setupNode { version = "20"; }) == [ fakePkgs.nodejs_20.drvPath ];
    pinnedOnJobPath = contains "${fakePkgs.nodejs_20}/bin' >> \"$JOB_PATH\"" (pinned.setupNode { version = "20"; }).bash;
    fullVersionUsesMajor = drvs (pinned.setupNode { version = "20.11.1"; }) == [ fakePkgs.nodejs_20.drvPath ];
    integerVersion = (plain.setupNode { version = 20; }).name;
    # nodejs_14 throws in the stand-in pkgs, as removed packages do in nixpkgs.
    removedFallsBack = !((pinned.setupNode { version = "14"; }) ? deps);
    missingFallsBack = !((pinned.setupNode { version = "99"; }) ? deps);
  };

  setupPython = {
    pinnedDep = drvs (pinned.setupPython { version = "3.11"; }) == [ fakePkgs.python311.drvPath ];
    checksVersion = contains "'Python 3.11'" (plain.setupPython { version = "3.11"; }).bash;
    majorOnly = !((pinned.setupPython { version = "3"; }) ? deps);
  };

  setupRust = {
    pinnedDeps = drvs pinned.setupRust == [ fakePkgs.rustc.drvPath fakePkgs.cargo.drvPath ];
    plainNoDeps = !(plain.setupRust ? deps);
  };

  sopsLoad = {
    inherit (sops) name;
    masks = contains "echo \"::add-mask::$value\"" sops.bash;
    appendsToJobEnv = contains ">> \"$JOB_ENV\"" sops.bash;
    inputType = contains "--input-type dotenv --output-type dotenv" sops.bash;
    defaultYaml = contains "--input-type yaml" (plain.sopsLoad { file = "s.yaml"; }).bash;
    pinnedDep = drvs (pinned.sopsLoad { file = "s.yaml"; }) == [ fakePkgs.sops.drvPath ];
    pathNotCopied = contains "file='${toString ./actions.nix}'" sopsPath && !(builtins.hasContext sopsPath);
  };

  requireEnv = {
    inherit (require) name;
    loopsOverNames = contains "for name in API_KEY DB_PASSWORD; do" require.bash;
    message = contains "required variables not set or empty: $missing" require.bash;
  };
}
