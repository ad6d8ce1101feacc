# A container without an image starts from its steps' deps: with pkgs,
# every step of such a job also gets bash and coreutils, after its own
# deps (nixactions' default image has them). A job with an image, another
# executor, or a library without pkgs keeps its steps as written.
let
  support = import ../support { };
  withPkgs = import ../support { pkgs = support.fakePkgs; };
  names = deps: map (d: builtins.baseNameOf d.path) (if deps == null then [ ] else deps);
  stepDeps = lib: executor: steps:
    let plan = (lib.mkWorkflow { name = "w"; jobs.j = { inherit executor steps; }; }).plan; in
    map (s: names (s.deps or null)) plan.jobs.j.steps;
  strip = map (map (n: builtins.substring 33 (builtins.stringLength n) n));
  steps = [ { bash = "true"; } { bash = "tool-echo hi"; deps = [ support.tool ]; } ];
in
{
  noImage = strip (stepDeps withPkgs.lib (withPkgs.lib.executors.oci { }) steps);
  withImage = strip (stepDeps withPkgs.lib (withPkgs.lib.executors.oci { image = "alpine:3"; }) steps);
  local = strip (stepDeps withPkgs.lib withPkgs.lib.executors.local steps);
  noPkgs = strip (stepDeps support.lib (support.lib.executors.oci { }) steps);
}
