# problems: the mistakes of a workflow that can be found all at once,
# before mkWorkflow's one-at-a-time checks run: unknown fields of the
# workflow, its jobs, their steps and inputs, needs naming no job, inputs
# naming no artifact or one of a job not needed (the compiler's checks,
# with the place in the Nix file). Each comes with the position of what is wrong
# (builtins.unsafeGetAttrPos) and a JSON-like path:
#
#   /path/ci.nix:12:9: jobs.build.steps[0]: unknown field "timout" (did you mean "timeout"?)
#
# The CLI shows these paths relative to where it runs. Nothing here fails:
# a value of the wrong type is left to the checks that follow, which say
# what they expected.
{ util, workflowFields, jobFields, stepFields }:
let
  inherit (builtins) attrNames concatLists concatStringsSep elem elemAt filter genList
    isAttrs isList isString length unsafeGetAttrPos;
  inherit (util) quote didYouMean;

  # at writes one problem, positioned at attribute name of attrs when Nix
  # knows where it was written.
  at = attrs: name: path: msg:
    let pos = unsafeGetAttrPos name attrs; in
    (if pos == null then "" else "${pos.file}:${toString pos.line}:${toString pos.column}: ")
    + "${path}: ${msg}";

  plainAttrs = v: isAttrs v && !(util.isDerivation v);

  unknownFields = path: known: attrs:
    map (k: at attrs k path "unknown field ${quote k}${didYouMean k known}")
      (filter (k: !(elem k known)) (attrNames attrs));

  stepProblems = jobPath: i: s:
    if plainAttrs s then unknownFields "${jobPath}.steps[${toString i}]" stepFields s else [ ];

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
      ++ concatLists (map (n: jobProblems jobs jobNames needsMap producers n jobs.${n}) jobNames);

  # check returns result when w has none of these problems, else fails
  # with all of them, one a line.
  check = w: result:
    let ps = problems w; in
    if ps == [ ] then result
    else throw "nixflow: ${toString (length ps)} ${if length ps == 1 then "problem" else "problems"} in the workflow:\n${concatStringsSep "\n" ps}";
in
{
  inherit problems check;
}
