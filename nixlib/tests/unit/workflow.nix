# mkWorkflow shapes: the result's attributes without pkgs, .json is
# builtins.toJSON of .plan, only the fields written are emitted, nulls of
# ordinary fields are dropped, env values are stringified, a job that is
# { } (what lib.optionalAttrs false gives) is dropped, as nixactions
# drops it.
let
  inherit (import ../support { }) lib tool;
  minimal = lib.mkWorkflow { name = "min"; jobs.j.steps = [ { bash = "true"; } ]; };
  withEmpty = lib.mkWorkflow {
    name = "empty";
    jobs = lib.mkMatrixJobs { name = "m"; matrix.os = [ "a" "b" ]; jobTemplate = { os }: if os == "b" then { } else { steps = [ { bash = "true"; } ]; }; }
      // { j.steps = [ { bash = "true"; } ]; deploy = { }; };
  };
  full = lib.mkWorkflow {
    name = "full";
    env = { A = "1"; N = 3; F = "1.5"; B = true; P = ./workflow.nix; D = tool; };
    envFrom = [ (lib.envProviders.required [ "A" ]) ];
    logging = { format = "json"; };
    jobs.j = {
      executor = null;
      condition = null;
      needs = [ ];
      env = { };
      envFrom = [ ];
      inputs = [ ];
      outputs = { };
      continueOnError = true;
      actions = [
        { name = "one"; bash = "true"; workdir = "src/"; env = { X = "y"; }; condition = "always()"; continueOnError = false; }
        { bash = "true"; workdir = null; deps = [ ]; }
      ];
    };
  };
in
{
  attrs = builtins.attrNames minimal;
  minimalPlan = minimal.plan;
  jsonIsToJSON = minimal.json == builtins.toJSON minimal.plan;
  notADerivation = !(minimal ? type);
  fullPlan = full.plan // { env = full.plan.env // { P = "<path>"; D = "<tool>"; }; };
  envPathNotCopied = builtins.substring 0 1 full.plan.env.P == "/" && !(builtins.hasContext full.plan.env.P);
  envDerivation = full.plan.env.D == tool.outPath;
  emptyJobDropped = builtins.attrNames withEmpty.plan.jobs;
}
