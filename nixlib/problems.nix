# problems: the mistakes of a workflow that can be found all at once,
# before mkWorkflow's one-at-a-time checks run: unknown fields of the
# workflow, its jobs and their steps, needs naming no job, inputs naming no
# artifact. Each comes with the position of what is wrong
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

  jobProblems = jobNames: artifacts: name: j:
    let
      path = "jobs.${name}";
      steps = j.steps or j.actions or [ ];
      needs = j.needs or [ ];
      inputs = j.inputs or [ ];
      inputName = v: if isString v then v else if plainAttrs v && isString (v.name or null) then v.name else null;
    in
    if !(plainAttrs j) then [ ]
    else
      unknownFields path jobFields j
      ++ (if isList steps then concatLists (genList (i: stepProblems path i (elemAt steps i)) (length steps)) else [ ])
      ++ (if isList needs then
        map (n: at j "needs" "${path}.needs" "unknown job ${quote n}${didYouMean n jobNames}")
          (filter (n: isString n && !(elem n jobNames) && !(builtins.any (j: builtins.substring 0 (builtins.stringLength n + 1) j == "${n}-") jobNames)) needs)
      else [ ])
      ++ (if isList inputs && artifacts != [ ] then
        map (n: at j "inputs" "${path}.inputs" "unknown artifact ${quote n}: no job outputs it${didYouMean n artifacts}")
          (filter (n: n != null && !(elem n artifacts)) (map inputName inputs))
      else [ ]);

  problems = w:
    if !(plainAttrs w) then [ ]
    else
      let
        jobs = if plainAttrs (w.jobs or null) then w.jobs else { };
        jobNames = attrNames jobs;
        outputsOf = j: if plainAttrs j && plainAttrs (j.outputs or null) then attrNames j.outputs else [ ];
        artifacts = concatLists (map (n: outputsOf jobs.${n}) jobNames);
      in
      unknownFields "workflow" workflowFields w
      ++ concatLists (map (n: jobProblems jobNames artifacts n jobs.${n}) jobNames);

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
