# Deps: a derivation gives { path = output path; drv = .drv path } and the
# strings keep their context (so the runner's JSON file depends on the
# dep); store path strings and { path; drv; } sets pass through.
let
  inherit (import ../support { }) lib tool;
  plan = (lib.mkWorkflow {
    name = "deps";
    jobs.j.steps = [ { bash = "tool-echo hi"; deps = [ tool "/nix/store/cccc-jq-1.7" { path = "/nix/store/aaaa-make"; drv = "/nix/store/bbbb-make.drv"; } ]; } ];
  });
  deps = (builtins.head plan.plan.jobs.j.steps).deps;
  first = builtins.head deps;
  hasSuffix = suffix: s:
    let n = builtins.stringLength s; m = builtins.stringLength suffix; in
    n >= m && builtins.substring (n - m) m s == suffix;
in
{
  derivation = {
    pathIsOutPath = first.path == tool.outPath;
    drvIsDrvPath = first.drv == tool.drvPath;
    drvSuffix = hasSuffix ".drv" first.drv;
    pathInStore = builtins.dirOf first.path == builtins.storeDir;
    fields = builtins.attrNames first;
    # The output's context is kept (builtins.toJSON carries it into the
    # JSON text), the .drv path's is not: the JSON depends on the output.
    jsonContext = builtins.getContext plan.json == { ${builtins.unsafeDiscardStringContext tool.drvPath} = { outputs = [ "out" ]; }; };
    drvNoContext = !(builtins.hasContext first.drv);
    pathHasContext = builtins.hasContext first.path;
  };
  strings = builtins.tail deps;
  # "${tool}" carries its derivation in its context: the CLI can build it.
  stringWithContext =
    let d = builtins.head (builtins.head (lib.mkWorkflow {
      name = "deps2";
      jobs.j.steps = [ { bash = "tool-echo hi"; deps = [ "${tool}" ]; } ];
    }).plan.jobs.j.steps).deps;
    in { drvIsDrvPath = d.drv == tool.drvPath; pathIsOutPath = d.path == tool.outPath; };
}
