# The runnable part, evaluated with stand-ins for pkgs and the nixflow
# package (there is no nixpkgs here): the workflow is itself a derivation
# for `nix build` (the script: one file), .drv/.script/.app/.jsonFile
# exist (.app the runner, for `nix run`), the JSON
# file depends on the deps, and .json never evaluates a pkgs function.
let
  support = import ../support { };
  nixflowPkg = support.fakeProgram "nixflow" "fake nixflow";
  lib = (import ../support { pkgs = support.fakePkgs; nixflow = nixflowPkg; }).lib;
  wf = lib.mkWorkflow {
    name = "my ci";
    jobs.j.steps = [ { bash = "tool-echo hi"; deps = [ support.tool ]; } ];
  };
  hasSuffix = suffix: s:
    let n = builtins.stringLength s; m = builtins.stringLength suffix; in
    n >= m && builtins.substring (n - m) m s == suffix;
  # pkgs whose functions all throw: .json must still evaluate.
  untouchable = {
    writeText = throw "pkgs.writeText evaluated";
    writeShellScriptBin = throw "pkgs.writeShellScriptBin evaluated";
    runCommand = throw "pkgs.runCommand evaluated";
  };
  lazy = (import ../.. { pkgs = untouchable; nixflow = nixflowPkg; }).mkWorkflow {
    name = "lazy";
    jobs.j.steps = [ { bash = "true"; } ];
  };
in
{
  isDerivation = wf.type == "derivation";
  name = wf.name;
  drvPathSuffix = hasSuffix ".drv" wf.drvPath;
  sameAsScript = wf.drvPath == wf.script.drvPath && wf.outPath == wf.script.outPath && wf.out == wf.script;
  description = wf.meta.description;
  outputs = wf.outputs;
  app = wf.app.type == "app" && wf.app.program == "${wf.drv}/bin/my-ci";
  runnerCallsNixflow = builtins.match ".*exec /nix/store/[^ ]*-nixflow/bin/nixflow run /nix/store/[^ ]*-my-ci.json \"[$]@\".*" wf.drv.text != null;
  jsonFileHasDep = builtins.elem support.tool.drvPath (builtins.attrNames (builtins.getContext wf.jsonFile.text));
  scriptCallsCompile = builtins.match ".*/bin/nixflow compile /nix/store/[^ ]*-my-ci.json -o \"[$]out\".*" (builtins.elemAt wf.script.args 1) != null;
  lazyJson = lazy.json;
}
