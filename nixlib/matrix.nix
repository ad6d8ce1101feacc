# mkMatrixJobs { name, matrix, jobTemplate }: one job per combination of
# the matrix's values, as GitHub Actions' strategy.matrix, expanded at
# evaluation time.
#
#   mkMatrixJobs {
#     name = "test";
#     matrix = { os = [ "linux" "darwin" ]; node = [ 18 20 ]; };
#     jobTemplate = { os, node }: { steps = [ { bash = "make test NODE=${toString node}"; } ]; };
#   }
#   => { test-node-18-os-darwin = ...; test-node-18-os-linux = ...; ... }
#
# Combinations. The axes are the keys of `matrix` other than `include` and
# `exclude`; each holds a non-empty list of values. The rules are GitHub's:
#   1. The base combinations are the cartesian product of the axes.
#   2. exclude: a base combination is removed when it matches ANY exclude
#      entry. It matches an entry when it has the entry's value for every
#      key of the entry (a partial match: { os = "darwin"; } removes every
#      darwin combination). Every key of an exclude entry must be an axis.
#   3. include, after exclude, entry by entry, in order: take the entry's
#      keys that are axes ("original" keys). Every remaining base
#      combination whose values for those keys are the entry's values gets
#      ALL the entry's keys merged in: the extra keys are added, and may
#      overwrite extra keys added by an earlier include entry, but an
#      original value is never overwritten (a combination with another
#      value does not match). An entry without original keys matches every
#      base combination. If the entry matches no base combination, it is
#      added as a new combination of its own. Entries are matched against
#      the base combinations only, never against combinations added by
#      earlier include entries.
#   A matrix with only `include` gives one combination per include entry.
#
# Values are compared by their string form (below), so 20 and "20" match.
#
# Job names: `<name>-<k1>-<v1>-<k2>-<v2>...` over every key of the final
# combination (extra keys from include too), keys sorted. Values are
# written as strings: integers in decimal, booleans as true/false (floats
# are refused: Nix would round them); characters a job name cannot hold (anything but ASCII
# letters and digits, '_', '-' and '.') become '-', one per byte (so "ü",
# two bytes in UTF-8, becomes "--"). Values must therefore be strings,
# integers or booleans. Two combinations that give the same name (e.g.
# "a b" and "a-b", or two identical include entries) are an evaluation
# error naming both.
#
# jobTemplate is called with the combination (the values as written, not
# their strings) and returns a job.
{ util }:
let
  inherit (builtins) all any attrNames concatLists concatStringsSep elem filter
    foldl' genList isAttrs isBool isFloat isFunction isInt isList isString
    length listToAttrs map match split toJSON;
  inherit (util) fail quote describe;

  # valueString writes a matrix value as it appears in job names.
  valueString = where: v:
    if isString v then v
    else if isInt v then toString v
    else if isBool v then (if v then "true" else "false")
    else if isFloat v then fail where "a float would be rounded in the job name (Nix writes 6 significant digits): write it as a string, e.g. \"${toJSON v}\""
    else fail where "matrix values must be strings, integers or booleans (they make the job name), got ${describe v}";

  # sanitise replaces every character a job name cannot hold with '-'.
  sanitise = s: concatStringsSep "-" (filter isString (split "[^A-Za-z0-9_.-]" s));

  mapIndexed = f: l: genList (i: f i (builtins.elemAt l i)) (length l);

  entries = where: v:
    if !(isList v) then fail where "expected a list of attribute sets, got ${describe v}"
    else mapIndexed (i: e: if isAttrs e then e else fail "${where}[${toString i}]" "expected an attribute set, got ${describe e}") v;

  # matches: the combination has the entry's value for every key of entry.
  matches = where: entry: combo:
    all (k: combo ? ${k} && valueString where combo.${k} == valueString where entry.${k}) (attrNames entry);

  combinations = where: matrix:
    let
      axes = filter (k: k != "include" && k != "exclude") (attrNames matrix);
      values = k:
        let v = matrix.${k}; in
        if !(isList v) then fail "${where}: matrix.${k}" "expected a list of values, got ${describe v}"
        else if v == [ ] then fail "${where}: matrix.${k}" "expected at least one value"
        else v;
      # 1. The cartesian product; none at all when there are no axes (a
      # matrix of only include entries).
      base =
        if axes == [ ] then [ ]
        else foldl' (combos: k: concatLists (map (c: map (v: c // { ${k} = v; }) (values k)) combos)) [ { } ] axes;

      excludes = mapIndexed
        (i: e:
          let bad = filter (k: !(elem k axes)) (attrNames e); in
          if bad == [ ] then e
          else fail "${where}: matrix.exclude[${toString i}]"
            "key ${quote (builtins.head bad)} is not a matrix key${util.didYouMean (builtins.head bad) axes} (known: ${concatStringsSep ", " axes})")
        (entries "${where}: matrix.exclude" (matrix.exclude or [ ]));
      includes = entries "${where}: matrix.include" (matrix.include or [ ]);

      # 2. exclude.
      kept = filter (c: !(any (e: matches where e c) excludes)) base;

      # 3. include. `base` holds the remaining base combinations with the
      # keys merged so far, `added` the entries that matched none of them.
      included = foldl'
        (acc: entry:
          let
            original = builtins.intersectAttrs (listToAttrs (map (k: { name = k; value = null; }) axes)) entry;
            hit = any (matches where original) acc.base;
          in
          if hit then acc // { base = map (c: if matches where original c then c // entry else c) acc.base; }
          else acc // { added = acc.added ++ [ entry ]; })
        { base = kept; added = [ ]; }
        includes;
    in
    included.base ++ included.added;

  mkMatrixJobs = args:
    let
      where = "mkMatrixJobs ${quote (args.name or "?")}";
      a = util.attrs "mkMatrixJobs" args;
      prefix =
        let n = util.nonEmpty "${where}: name" a.name; s = sanitise n; in
        if match "[A-Za-z0-9_].*" s == null
        then fail "${where}: name" "must start with a letter, a digit or '_'"
        else s;
      matrix = util.attrs "${where}: matrix" a.matrix;
      template =
        if isFunction a.jobTemplate then a.jobTemplate
        else fail "${where}: jobTemplate" "expected a function of the combination, got ${describe a.jobTemplate}";

      # call: the template with a combination, or a failure naming the
      # argument it takes (without a default) that the combination lacks,
      # rather than Nix's word about a call inside this library.
      call = combo:
        let
          args = builtins.functionArgs template;
          missing = filter (k: !args.${k} && !(combo ? ${k})) (attrNames args);
        in
        if missing == [ ] then template combo
        else fail "${where}: jobTemplate" "takes ${quote (builtins.head missing)}, which the combination ${toJSON combo} has no value for (the matrix gives ${concatStringsSep ", " (map quote (attrNames combo))}; give the argument a default, { ${builtins.head missing} ? null, ... }, or add it to the matrix)";

      jobName = combo:
        concatStringsSep "-"
          ([ prefix ] ++ concatLists (map (k: [ (sanitise k) (sanitise (valueString "${where}: matrix.${k}" combo.${k})) ]) (attrNames combo)));

      combos = combinations where matrix;

      # mark: a job made here carries the matrix's name, so that needs =
      # [ NAME ] means these jobs, not every job whose name starts so.
      # A job that is { } stays so: mkWorkflow drops it.
      mark = j: if builtins.isAttrs j && j != { } then j // { __nixflowMatrix = prefix; } else j;

      # Fails on the first two combinations with the same job name.
      byName = foldl'
        (acc: c:
          let n = jobName c; in
          if acc ? ${n}
          then fail where "combinations ${toJSON acc.${n}} and ${toJSON c} both make the job name ${quote n}"
          else acc // { ${n} = c; })
        { }
        combos;
    in
    util.checkFields "mkMatrixJobs" [ "name" "matrix" "jobTemplate" ] a (
      if !(a ? name) then fail "mkMatrixJobs" "missing required field \"name\""
      else if !(a ? matrix) then fail where "missing required field \"matrix\""
      else if !(a ? jobTemplate) then fail where "missing required field \"jobTemplate\""
      else builtins.mapAttrs (n: c: mark (call c)) byName);
in
{
  inherit mkMatrixJobs;
  # For tests and tools: the combinations a matrix expands to.
  inherit combinations;
}
