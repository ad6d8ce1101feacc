# mkWorkflow: checks a workflow written in Nix and turns it into the JSON
# job graph (schema v1) that the Go CLI compiles and runs.
#
# The checks here catch obvious mistakes at evaluation time, with the job
# and field named (`nixflow: job "test": unknown field "neds" (did you mean
# "needs"?)`), because an error the CLI reports in the generated JSON points
# at a file the user never wrote. They follow compiler/decode.go, which
# stays the authority: what passes here may still be rejected there (a
# condition's bash syntax, artifacts of jobs not needed, cycles), with
# job names and JSON paths the user can map back.
#
# Only fields the user wrote are emitted; the compiler fills the defaults.
# For every optional field except retry and timeout, null means "not
# given"; for retry and timeout null turns the setting off (see
# util.layers).
{ util, executorJSON, providerJSON, pkgs, nixflow }:
let
  compat = import ./compat.nix { inherit util; };
  inherit (builtins) attrNames concatStringsSep elem elemAt filter foldl'
    genList head isAttrs isString length mapAttrs match split substring toJSON;
  inherit (util) fail quote describe optionalAttrs checkFields;

  workflowFields = [ "name" "jobs" "env" "envFrom" "retry" "timeout" "logging" ];

  # __nixflowMatrix: the matrix's name, set by mkMatrixJobs on each job it
  # makes (never in the JSON graph).
  jobFields = [ "executor" "steps" "actions" "needs" "condition" "continueOnError"
    "env" "envFrom" "inputs" "outputs" "retry" "timeout" "__nixflowMatrix" ] ++ compat.aliasFields;

  stepFields = [ "name" "bash" "deps" "env" "condition" "continueOnError"
    "retry" "timeout" "workdir" ] ++ compat.aliasFields;

  # conditionFields: condition and continueOnError of a job or a step, in
  # either spelling.
  conditionFields = where: a:
    let
      c = compat.alias where a "condition" "if";
      e = compat.alias where a "continueOnError" "continue-on-error";
    in
    optionalAttrs (c != null) { condition = condition "${where}: condition" c; }
    // optionalAttrs (e != null) { continueOnError = util.bool "${where}: continueOnError" e; };

  # Job and artifact names, as the compiler accepts them.
  namePattern = "[A-Za-z0-9_][A-Za-z0-9_.-]*";

  # given: the user wrote the field, with a value other than null.
  given = a: k: a ? ${k} && a.${k} != null;

  # imap0-like helper: f index element, for a list.
  mapIndexed = f: l: genList (i: f i (elemAt l i)) (length l);

  # conditionProblem: the mistakes in a condition that the compiler would
  # reject before any bash parsing (compiler/condition.go, same words), so
  # that they come with the others and a position; the compiler checks the
  # rest (status expressions, bash syntax).
  conditionProblem = v:
    let
      text = if isString v then util.trim v else "";
      bare = match "!?[[:space:]]*(success|failure|always|cancelled)[[:space:]]*((&&|[|][|])(.|\n)*)?" text;
      inner = util.trim (util.trimSuffix "}}" (util.trimPrefix "\${{" text));
    in
    if !(isString v) then "expected a string, got ${describe v}"
    else if text == "" then "empty condition (use \"always()\" to run unconditionally)"
    else if length (split "[$][{][{]" text) > 1 && match "[!()&| ]*((success|failure|always|cancelled)[(][)][!()&| ]*)+" inner != null
    then "\${{ ... }} expressions are GitHub Actions syntax, not nixflow's: write the condition itself (${quote inner})"
    else if length (split "[$][{][{]" text) > 1
    then "\${{ ... }} expressions are GitHub Actions syntax, not nixflow's: a condition is a status function (success(), failure(), always(), cancelled()) or a bash command, e.g. [ \"$BRANCH\" = main ]"
    else if bare != null
    then "${quote (head bare)} is not a status function call: write ${quote "${head bare}()"} (a bare word would run as a bash command)"
    else null;

  condition = where: v:
    let p = conditionProblem v; in
    if p != null then fail where p else v;

  # A path inside the job's workspace: relative and not leaving it. Nix
  # paths are refused: they are absolute paths of the machine evaluating.
  workspacePath = where: v:
    let s = util.nonEmpty where v; in
    if builtins.typeOf v == "path" then fail where "expected a path relative to the workspace (a string), got a nix path"
    else if substring 0 1 s == "/" then fail where "path ${quote s} must be relative to the workspace"
    else if leavesWorkspace s then fail where "path ${quote s} leaves the workspace"
    else s;

  # leavesWorkspace: whether a relative path climbs above its start, as
  # Go's path.Clean sees it ("a/../b" stays inside, "a/../../b" leaves).
  leavesWorkspace = s:
    let
      parts = filter (p: isString p && p != "" && p != ".") (split "/" s);
      depth = foldl' (d: p: if d < 0 then d else if p == ".." then d - 1 else d + 1) 0 parts;
    in
    depth < 0;

  envFrom = where: v: mapIndexed
    (i: p:
      let here = "${where}[${toString i}]"; e = compat.execProvider here p; in
      if e != null then e else providerJSON here p)
    (util.list where v);

  # dep turns one element of a step's deps into its JSON object.
  #  - a derivation gives its output path and its .drv path. The output
  #    path keeps its Nix string context: builtins.toJSON carries it into
  #    the JSON text, so the derivation that writes the JSON to the store
  #    (and the runner of `nix run`/`nix build` that uses it) depends on
  #    every dep's output, and building the runner builds them.
  #    The .drv path is written WITHOUT its context (unsafeDiscardStringContext),
  #    on purpose: with it, the JSON file would depend on the whole closure
  #    of .drv files of every dep (its text names them, so they would
  #    become runtime references, copied wherever the runner goes), and
  #    instantiating the runner in read-only evaluation (nix-instantiate
  #    --eval) would fail, because those .drv files are not written then.
  #    The drv field is for the CLI: it realises a missing output from it
  #    (the .drv exists when the workflow was evaluated in read-write
  #    mode) and reports a failure as a build failure.
  #  - a string is an existing path (e.g. "/nix/store/...-jq-1.7"), passed
  #    through as { path }.
  #  - { path; drv ? } is passed through (a graph written by hand).
  dep = where: d:
    if util.isDerivation d then { path = "${d}"; drv = builtins.unsafeDiscardStringContext d.drvPath; }
    else if isString d then
      (let
        # "${pkgs.jq}" carries its derivation in its string context: use
        # it, so that a dep not built yet can be built.
        ctx = builtins.getContext d;
        drvs = builtins.filter (k: ctx.${k} ? outputs) (builtins.attrNames ctx);
      in
      if substring 0 1 d != "/" then fail where "expected a derivation or an absolute store path, got ${quote d}"
      else if length drvs == 1 then { path = d; drv = builtins.unsafeDiscardStringContext (builtins.head drvs); }
      else { path = d; })
    else if isAttrs d && d ? path then
      checkFields where [ "path" "drv" ] d (
        { path = util.nonEmpty "${where}.path" d.path; }
        // optionalAttrs (given d "drv") {
          drv =
            let s = util.str "${where}.drv" d.drv; in
            if match "/.*[.]drv" s == null then fail "${where}.drv" "expected an absolute .drv path, got ${quote s}" else s;
        })
    else if builtins.typeOf d == "path" then
      fail where "a nix path is not a dep: use a derivation (e.g. pkgs.writeShellScriptBin) or a store path string"
    else fail where "expected a derivation or a store path, got ${describe d}";

  # step: rename is the name to give the step instead of its own (see
  # compat.uniqueStepNames), or null.
  step = jobWhere: rename: i: s:
    let
      named = isAttrs s && !(util.isDerivation s) && s ? name && isString s.name;
      where = "${jobWhere}: step ${toString (i + 1)}${if named then " (${quote s.name})" else ""}";
    in
    if !(isAttrs s) || util.isDerivation s then
      fail where "expected a step attribute set ({ bash = \"...\"; }), got ${describe s}"
    else
      checkFields where stepFields s (
        (if given s "bash" then { bash = util.nonEmpty "${where}: bash" s.bash; }
         else fail where "missing required field \"bash\"")
        // optionalAttrs (given s "name") { name = util.oneLine "${where}: name" s.name; }
        // optionalAttrs (rename != null) { name = rename; }
        // optionalAttrs (given s "deps") {
          deps = mapIndexed (k: dep "${where}: deps[${toString k}]") (util.list "${where}: deps" s.deps);
        }
        // optionalAttrs (given s "env") { env = util.env "${where}: env" s.env; }
        // conditionFields where s
        // optionalAttrs (given s "workdir") { workdir = workspacePath "${where}: workdir" s.workdir; }
        // util.layers where s);

  needs = where: jobNames: families: self: v:
    if !(builtins.isList v) then
      fail where "expected a list of job names, got ${describe v}${if isString v then " (write needs = [ ${quote v} ];)" else ""}"
    else
      foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ] (builtins.concatLists (mapIndexed
        (i: n:
          let w = "${where}[${toString i}]"; s = util.str w n; family = families.${s} or [ ]; in
          if s == self then fail w "job ${quote s} needs itself"
          else if !(elem s jobNames) && family != [ ] then family
          else if !(elem s jobNames) then fail w "unknown job ${quote s}${util.didYouMean s jobNames}"
          else if elem s (genList (elemAt v) i) then fail w "job ${quote s} is needed twice"
          else [ s ])
        v));

  # withImageDeps: a container without an image starts from the closure
  # of its steps' deps, which must hold bash. As nixactions' default image
  # does, the library gives every step of such a job bash and coreutils
  # from pkgs, after the step's own deps (whose bash, if any, comes
  # first). Without pkgs the steps stay as written, and the executor
  # says what is missing.
  imageDeps = if pkgs == null then [ ] else map (dep "oci image") [ pkgs.bash pkgs.coreutils ];
  withImageDeps = executor: s:
    if executor != null && executor.type or null == "oci" && !(executor ? image) && imageDeps != [ ]
    then s // { deps = (s.deps or [ ]) ++ imageDeps; }
    else s;

  # matrixFamilies: for each matrix's name, the jobs mkMatrixJobs made for
  # it (which it marks), so that, where no job has that name itself,
  # `needs = [ "test" ]` waits for them all. A job named test-e2e that no
  # matrix made is not one of them.
  matrixFamilies = jobs:
    foldl'
      (acc: n:
        let m = jobs.${n}.__nixflowMatrix or null; in
        if isAttrs jobs.${n} && isString m then acc // { ${m} = (acc.${m} or [ ]) ++ [ n ]; } else acc)
      { }
      (attrNames jobs);

  input = where: v:
    if isString v then util.nonEmpty where v
    else if isAttrs v && !(util.isDerivation v) then
      checkFields where [ "name" "path" ] v (
        (if given v "name" then { name = util.nonEmpty "${where}.name" v.name; }
         else fail where "missing required field \"name\"")
        // optionalAttrs (given v "path") { path = workspacePath "${where}.path" v.path; })
    else fail where "expected an artifact name or { name; path; }, got ${describe v}";

  outputs = where: v:
    mapAttrs
      (k: p:
        if match namePattern k == null
        then fail "${where}.${k}" "invalid artifact name ${quote k} (letters, digits, '_', '-' and '.', not starting with '-' or '.')"
        else workspacePath "${where}.${k}" p)
      (util.attrs where v);

  job = jobNames: families: name: j:
    let
      where = "job ${quote name}";
      stepList = util.list "${where}: steps" (if j ? steps then j.steps else j.actions);
      executor = if given j "executor" then executorJSON where j.executor else null;
    in
    if match namePattern name == null then
      fail "workflow: jobs" "invalid job name ${quote name} (letters, digits, '_', '-' and '.', not starting with '-' or '.')"
    else if !(isAttrs j) || util.isDerivation j then
      fail where "expected a job attribute set, got ${describe j}"
    else
      checkFields where jobFields j (
        if j ? steps && j ? actions then fail where "\"steps\" and \"actions\" are the same field; give one"
        else if !(given j "steps" || given j "actions") then fail where "missing required field \"steps\""
        else if stepList == [ ] then fail "${where}: steps" "a job needs at least one step"
        else
          (
            { steps = map (withImageDeps executor) (mapIndexed (i: step where (elemAt (compat.uniqueStepNames name stepList).names i) i) stepList); }
            // optionalAttrs (given j "executor") { inherit executor; }
            // optionalAttrs (given j "needs") { needs = needs "${where}: needs" jobNames families name j.needs; }
            // conditionFields where j
            // optionalAttrs (given j "env") { env = util.env "${where}: env" j.env; }
            // optionalAttrs (given j "envFrom") { envFrom = envFrom "${where}: envFrom" j.envFrom; }
            // optionalAttrs (given j "inputs") {
              inputs = mapIndexed (i: input "${where}: inputs[${toString i}]") (util.list "${where}: inputs" j.inputs);
            }
            // optionalAttrs (given j "outputs") { outputs = outputs "${where}: outputs" j.outputs; }
            // util.layers where j));

  logging = where: v:
    let l = util.attrs where v; in
    checkFields where [ "format" "level" ] l
      (optionalAttrs (given l "format") { format = util.enum "${where}.format" [ "structured" "simple" "json" ] l.format; }
       // optionalAttrs (given l "level") { level = util.enum "${where}.level" [ "trace" "debug" "info" "warn" "error" ] l.level; });

  # warnings: what the library accepted from a nixactions workflow but the
  # author should know (steps renamed), for the CLI to print.
  warnings = jobs:
    builtins.concatLists (map
      (name:
        let j = jobs.${name}; in
        if isAttrs j && (given j "steps" || given j "actions") && builtins.isList (if j ? steps then j.steps else j.actions)
        then
          let steps = if j ? steps then j.steps else j.actions; in
          (compat.uniqueStepNames name steps).warnings ++ nixShellWarnings name steps
        else [ ])
      (attrNames jobs));

  # nixShellWarnings: one warning per actions.nixShell step made without
  # pkgs (its script starts with util.nixShellRunTime and the bare names):
  # the porting docs say the names come from pkgs, so resolving them from
  # whatever nixpkgs the running machine has must not be silent.
  nixShellWarnings = job: steps:
    builtins.concatLists (genList
      (i:
        let
          s = elemAt steps i;
          m = if isAttrs s && !(util.isDerivation s) && s ? bash && isString s.bash
            then match "${util.nixShellRunTime}(.*)" (builtins.head (split "\n" s.bash)) else null;
          names = filter (n: isString n && n != "") (split " " (builtins.head m));
        in
        if m == null then [ ]
        else [
          ("job ${quote job}: step ${toString (i + 1)}${if s ? name && isString s.name then " (${quote s.name})" else ""}: "
          + "actions.nixShell without pkgs builds ${concatStringsSep ", " (map (n: "nixpkgs#${n}") names)} when the step runs, "
          + "from the nixpkgs of that machine's flake registry (or $NIXFLOW_NIXPKGS): not pinned by the workflow; "
          + "give nixflow's nixlib pkgs to resolve the names at evaluation, "
          + "or write full installables (\"github:NixOS/nixpkgs/<rev>#${builtins.head names}\")")
        ])
      (length steps));

  collected = import ./problems.nix { inherit util workflowFields jobFields stepFields conditionProblem; };

  # withoutEmptyJobs drops the jobs that are { }, as nixactions does: what
  # `deploy = lib.optionalAttrs isMain { ... };` leaves off the main
  # branch.
  withoutEmptyJobs = w:
    if isAttrs w && !(util.isDerivation w) && isAttrs (w.jobs or null) && !(util.isDerivation w.jobs)
    then w // { jobs = builtins.removeAttrs w.jobs (filter (n: w.jobs.${n} == { }) (attrNames w.jobs)); }
    else w;

  # plan builds the JSON graph as a Nix value.
  plan = w0: let w = withoutEmptyJobs w0; in collected.check w (
    let
      where = "workflow";
      jobs = util.attrs "${where}: jobs" w.jobs;
      jobNames = attrNames jobs;
    in
    if !(isAttrs w) || util.isDerivation w then fail "mkWorkflow" "expected an attribute set, got ${describe w}"
    else
      checkFields where workflowFields w (
        if !(given w "name") then fail where "missing required field \"name\""
        else if !(given w "jobs") then fail where "missing required field \"jobs\""
        else if jobs == { } then fail "${where}: jobs" "a workflow needs at least one job"
        else
          {
            version = 1;
            name = util.nonEmpty "${where}: name" w.name;
            jobs = mapAttrs (job jobNames (matrixFamilies jobs)) jobs;
          }
          // optionalAttrs (given w "env") { env = util.env "${where}: env" w.env; }
          // optionalAttrs (given w "envFrom") { envFrom = envFrom "${where}: envFrom" w.envFrom; }
          // optionalAttrs (given w "logging") { logging = logging "${where}: logging" w.logging; }
          // (let ws = warnings jobs; in optionalAttrs (ws != [ ]) { warnings = ws; })
          // util.layers where w));

  # A store path name allows fewer characters than a workflow name.
  storeName = name:
    concatStringsSep "-" (filter isString (split "[^A-Za-z0-9+._?=-]+" name));

  needsPkgs = what:
    fail "mkWorkflow" "${what} needs pkgs and the nixflow package: import nixflow's nixlib { inherit pkgs; nixflow = <the nixflow package>; }";

  # runnable: the derivations for `nix run` / `nix build`. Everything here
  # is lazy, so evaluating `.plan` or `.json` never touches pkgs.
  runnable = name: json:
    let
      n = storeName name;
      havePkgs = pkgs != null;
      haveAll = pkgs != null && nixflow != null;
      # The JSON as a file in the store. Its text keeps the string context
      # of the deps, so this derivation (and the runner) depends on them.
      jsonFile = if havePkgs then pkgs.writeText "${n}.json" json
        else fail "mkWorkflow" ".jsonFile needs pkgs: import nixflow's nixlib { inherit pkgs; }";
      runner =
        if haveAll then
          pkgs.writeShellScriptBin n ''
            exec ${nixflow}/bin/nixflow run ${jsonFile} "$@"
          ''
        else needsPkgs ".drv";
      # The standalone bash script (`nix build .#ci; ssh host < result`),
      # made by `nixflow compile`: one executable file, so that
      # `result` is the script itself. The JSON's string context makes the
      # deps' store paths its references (nix-store -qR lists them).
      script =
        if haveAll then
          pkgs.runCommand "${n}.sh" { } ''
            ${nixflow}/bin/nixflow compile ${jsonFile} -o "$out"
          ''
        else needsPkgs ".script";
    in
    {
      inherit jsonFile script;
      drv = runner;
      app = { type = "app"; program = "${runner}/bin/${n}"; };
    }
    # With pkgs and nixflow, the workflow itself also behaves as the script
    # derivation, so that a flake saying `packages.ci = import ./ci.nix
    # { ... };` gets `nix build .#ci` giving ONE file, `result`, to pipe:
    # `ssh host < result` (as with the seed library). `nix run .#ci` looks
    # in `apps.<system>.ci` first: the flake sets `apps.ci = ci.app`, the
    # `nixflow run` runner. The attributes are the ones nixpkgs'
    # lib.lazyDerivation exposes, and they stay lazy: `.json` can still be
    # read without evaluating pkgs.
    // optionalAttrs haveAll {
      type = "derivation";
      name = script.name;
      drvPath = script.drvPath;
      outPath = script.outPath;
      outputs = [ "out" ];
      outputName = "out";
      out = script;
      system = script.system;
      meta = {
        description = "the ${name} workflow as one bash script (nixflow compile)";
      };
    };

  mkWorkflow = w:
    let
      p = plan w;
      json = toJSON p;
    in
    {
      plan = p;
      inherit json;
      # For the CLI, not a stable API: see problems.nix.
      sourceMap = collected.sourceMap w;
    }
    // runnable (if isAttrs w && isString (w.name or null) then w.name else "workflow") json;
in
{
  inherit mkWorkflow;
}
