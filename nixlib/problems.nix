# problems: the mistakes of a workflow that can be found all at once,
# before mkWorkflow's one-at-a-time checks run: unknown fields of the
# workflow, its jobs, their steps and inputs, values mkWorkflow would
# refuse (timeouts, retry, env names and values, conditions as the
# compiler reads them, continueOnError), needs naming no job, inputs
# naming no artifact or one of a job not needed (the compiler's checks,
# with the place in the Nix file). Each comes with the position of what is wrong
# (builtins.unsafeGetAttrPos) and a JSON-like path:
#
#   /path/ci.nix:12:9: jobs.build.steps[0]: unknown field "timout" (did you mean "timeout"?)
#
# The CLI shows these paths relative to where it runs. Nothing here fails:
# a value of the wrong type is left to the checks that follow, which say
# what they expected.
{ util, workflowFields, jobFields, stepFields, conditionProblem }:
let
  inherit (builtins) attrNames concatLists concatStringsSep elem elemAt filter genList
    isAttrs isList isString length unsafeGetAttrPos;
  inherit (util) quote didYouMean posString;

  # at writes one problem, positioned at attribute name of attrs when Nix
  # knows where it was written.
  at = attrs: name: path: msg:
    let pos = unsafeGetAttrPos name attrs; in
    (if pos == null then "" else "${posString pos}: ")
    + "${path}: ${msg}";

  plainAttrs = v: isAttrs v && !(util.isDerivation v);

  unknownFields = path: known: attrs:
    map (k: at attrs k path "unknown field ${quote k}${didYouMean k known}")
      (filter (k: !(elem k known)) (attrNames attrs));

  # valueProblems: the values of a workflow, job or step (a) that the
  # library would refuse: timeout, retry, env, condition, continueOnError.
  # Each check is the one mkWorkflow runs (util's *Problem functions), so
  # the words are the same. prefix is the path before the field ("jobs.a."
  # or "" for the workflow's own fields).
  valueProblems = prefix: a:
    let
      given = k: a ? ${k} && a.${k} != null;
      # The spelling of a field with a nixactions alias that was written.
      spelled = canon: other: if given canon then canon else if given other then other else null;
      cond = spelled "condition" "if";
      coe = spelled "continueOnError" "continue-on-error";
      env = a.env;
      one = k: path: msg: if msg == null then [ ] else [ (at a k path msg) ];
    in
    (if a ? timeout then one "timeout" "${prefix}timeout" (util.timeoutProblem a.timeout) else [ ])
    ++ (if a ? retry then
      map (p: if p.key == null then at a "retry" "${prefix}retry" p.msg else at a.retry p.key "${prefix}retry${p.sub}" p.msg)
        (util.retryProblems a.retry)
    else [ ])
    ++ (if !(given "env") then [ ]
    else if !(plainAttrs env) then one "env" "${prefix}env" "expected an attribute set, got ${util.describe env}"
    else concatLists (map
      (k:
        let n = util.varNameProblem k; in
        if n != null then [ (at env k "${prefix}env" n) ]
        else one' env k "${prefix}env.${k}" (util.envValueProblem env.${k}))
      (attrNames env)))
    ++ (if cond == null then [ ] else one cond "${prefix}condition" (conditionProblem a.${cond}))
    ++ (if coe == null || builtins.isBool a.${coe} then [ ]
    else one coe "${prefix}continueOnError" "expected true or false, got ${util.describe a.${coe}}");

  one' = attrs: k: path: msg: if msg == null then [ ] else [ (at attrs k path msg) ];

  # A step without bash is said once its other fields are known: a
  # misspelt "bsh" is the unknown field's problem.
  stepProblems = jobPath: i: s:
    let
      path = "${jobPath}.steps[${toString i}]";
      unknown = unknownFields path stepFields s;
      names = attrNames s;
      anchor = if s ? name then "name" else builtins.head names;
      missingBash =
        if unknown != [ ] || (s ? bash && s.bash != null) then [ ]
        else if names == [ ] then [ "${path}: missing required field \"bash\"" ]
        else [ (at s anchor path "missing required field \"bash\"") ];
    in
    if plainAttrs s then unknown ++ missingBash ++ valueProblems "${path}." s else [ ];

  # family: the jobs a name in needs stands for (a job, or the jobs of a
  # matrix of that name: NAME-...).
  family = jobs: jobNames: n:
    if jobs ? ${n} then [ n ]
    else filter (j: builtins.substring 0 (builtins.stringLength n + 1) j == "${n}-") jobNames;

  needsOf = jobs: jobNames: name:
    let j = jobs.${name}; ns = if plainAttrs j then j.needs or [ ] else [ ]; in
    if isList ns then concatLists (map (n: if isString n then family jobs jobNames n else [ ]) ns) else [ ];

  # reach: name and every job it reaches through needs, as an attribute
  # set (genericClosure walks each job once, so a cycle ends the walk; the
  # compiler reports it).
  reach = needsMap: name:
    builtins.listToAttrs (map (x: { name = x.key; value = true; }) (builtins.genericClosure {
      startSet = [ { key = name; } ];
      operator = x: map (n: { key = n; }) needsMap.${x.key};
    }));

  inputProblems = needsMap: producers: name: j: path:
    let
      inputs = j.inputs or [ ];
      inputName = v: if isString v then v else if plainAttrs v && isString (v.name or null) then v.name else null;
      artifacts = attrNames producers;
      # Only asked for an artifact of a job not needed directly.
      mine = reach needsMap name;
      one = i: v:
        let
          n = inputName v;
          w = "${path}.inputs[${toString i}]";
          fields = if plainAttrs v then unknownFields w [ "name" "path" ] v else [ ];
        in
        fields ++ (
          if n == null then [ ]
          else if !(producers ? ${n}) then [ (at j "inputs" w "unknown artifact ${quote n}${didYouMean n artifacts}") ]
          else if producers.${n} == name then [ (at j "inputs" w "job ${quote name} reads its own artifact ${quote n}") ]
          else if !(elem producers.${n} needsMap.${name}) && !(mine ? ${producers.${n}}) then
            [ (at j "inputs" w "artifact ${quote n} comes from job ${quote producers.${n}}, which job ${quote name} does not need (add it to needs)") ]
          else [ ]);
    in
    if isList inputs then concatLists (genList (i: one i (elemAt inputs i)) (length inputs)) else [ ];

  jobProblems = jobs: jobNames: needsMap: producers: name: j:
    let
      path = "jobs.${name}";
      steps = j.steps or j.actions or [ ];
      needs = j.needs or [ ];
    in
    if !(plainAttrs j) then [ ]
    else
      unknownFields path jobFields j
      ++ valueProblems "${path}." j
      ++ (if isList steps then concatLists (genList (i: stepProblems path i (elemAt steps i)) (length steps)) else [ ])
      ++ (if isList needs then
        map (n: at j "needs" "${path}.needs" "unknown job ${quote n}${didYouMean n jobNames}")
          (filter (n: isString n && family jobs jobNames n == [ ]) needs)
      else [ ])
      ++ inputProblems needsMap producers name j path;

  problems = w:
    if !(plainAttrs w) then [ ]
    else
      let
        jobs = if plainAttrs (w.jobs or null) then w.jobs else { };
        jobNames = attrNames jobs;
        outputsOf = j: if plainAttrs j && plainAttrs (j.outputs or null) then attrNames j.outputs else [ ];
        # producers: artifact name -> the job that outputs it.
        producers = builtins.listToAttrs (concatLists (map (n: map (a: { name = a; value = n; }) (outputsOf jobs.${n})) jobNames));
        # The jobs each job needs, families expanded; computed once each.
        needsMap = builtins.mapAttrs (n: _: needsOf jobs jobNames n) jobs;
      in
      unknownFields "workflow" workflowFields w
      ++ valueProblems "" w
      ++ concatLists (map (n: jobProblems jobs jobNames needsMap producers n jobs.${n}) jobNames);

  # canonical: the JSON name of a field written in nixactions' spelling.
  canonical = k:
    if k == "if" then "condition"
    else if k == "continue-on-error" then "continueOnError"
    else if k == "actions" then "steps"
    else k;

  # fieldPositions: "PREFIXFIELD" = "FILE:LINE:COL" for each field of a
  # that Nix knows the place of.
  fieldPositions = prefix: a:
    concatLists (map
      (k: let p = unsafeGetAttrPos k a; in if p == null then [ ] else [ { name = prefix + canonical k; value = posString p; } ])
      (attrNames a));

  stepsOf = j: let s = j.steps or j.actions or [ ]; in if isList s then s else [ ];

  # sourceMap: what the CLI needs to put the compiler's own errors (found
  # in the generated JSON, where they have a JSON path only) at their
  # place in the Nix files, and to check the conditions itself when
  # evaluation failed on other problems. Never fails on a bad workflow.
  #   positions: JSON path ("jobs.a", "jobs.a.steps[0].condition") ->
  #     "FILE:LINE:COL"
  #   conditions: JSON path of each condition written as a string -> its text
  sourceMap = w:
    let
      jobs = if plainAttrs w && plainAttrs (w.jobs or null) then w.jobs else { };
      jobEntries = n:
        let j = jobs.${n}; path = "jobs.${n}"; p = unsafeGetAttrPos n jobs; in
        (if p == null then [ ] else [ { name = path; value = posString p; } ])
        ++ (if !(plainAttrs j) then [ ]
        else fieldPositions "${path}." j
          ++ concatLists (genList
          (i: let s = elemAt (stepsOf j) i; in if plainAttrs s then fieldPositions "${path}.steps[${toString i}]." s else [ ])
          (length (stepsOf j))));
      condition = path: a:
        let k = if a ? condition then "condition" else "if"; v = a.${k} or null; in
        if isString v then [ { name = "${path}.condition"; value = v; } ] else [ ];
      jobConditions = n:
        let j = jobs.${n}; path = "jobs.${n}"; in
        if !(plainAttrs j) then [ ]
        else condition path j
          ++ concatLists (genList
          (i: let s = elemAt (stepsOf j) i; in if plainAttrs s then condition "${path}.steps[${toString i}]" s else [ ])
          (length (stepsOf j)));
    in
    {
      positions = builtins.listToAttrs ((if plainAttrs w then fieldPositions "" w else [ ])
        ++ concatLists (map jobEntries (attrNames jobs)));
      conditions = builtins.listToAttrs (concatLists (map jobConditions (attrNames jobs)));
    };

  # check returns result when w has none of these problems, else fails
  # with all of them, one a line.
  check = w: result:
    let ps = problems w; in
    if ps == [ ] then result
    else throw "nixflow: ${toString (length ps)} ${if length ps == 1 then "problem" else "problems"} in the workflow:\n${concatStringsSep "\n" ps}";
in
{
  inherit problems check sourceMap;
}
