# pipeline.nix: examples/pipeline.json written in Nix. Both give the same
# job graph (compare `nixflow plan --format json` of the two).
#
#   nixflow run examples/pipeline.nix
#   nixflow run examples/pipeline.json    # the same, without Nix
#
# It builds a small site from docs/: version and lint run in parallel;
# build renders the pages and saves them as the artifact "site"; check
# reads it back at its original path, package under public/; notify runs
# whatever happened (always()).
#
# Nix notes: ''...'' strings drop their common indentation; closing them
# right after the last line (not on a line of their own) leaves out the
# final newline, which keeps the text identical to the JSON's.
{ nixflow, pkgs ? null, ... }:
nixflow.mkWorkflow {
  name = "docs-site";
  env.SITE_TITLE = "nixflow docs";
  jobs = {
    version.steps = [
      {
        name = "describe";
        bash = ''
          v=$(git describe --always --dirty 2>/dev/null || echo unknown)
          echo "version $v"
          echo "VERSION=$v" >> "$JOB_OUTPUT"'';
      }
    ];

    lint.steps = [
      {
        name = "titles";
        bash = ''
          for f in docs/*.md README.md; do head -n 1 "$f" | grep -q '^# ' || { echo "$f: first line is not a title"; exit 1; }; done
          echo "$(ls docs/*.md | wc -l) docs have a title"'';
      }
      {
        name = "links";
        bash = ''
          bad=0
          for f in docs/*.md README.md; do
            for target in $(grep -o '](docs/[^)#]*' "$f" | sed 's/^](//'); do
              [ -e "$target" ] || { echo "$f: broken link $target"; bad=1; }
            done
          done
          exit $bad'';
      }
    ];

    build = {
      needs = [ "version" "lint" ];
      steps = [
        {
          name = "render";
          bash = ''
            mkdir -p site
            {
              echo "<html><head><title>$SITE_TITLE</title></head><body>"
              echo "<h1>$SITE_TITLE $NEEDS_VERSION_VERSION</h1><ul>"
              for f in docs/*.md; do
                name=$(basename "$f" .md)
                title=$(head -n 1 "$f" | sed 's/^# //')
                sed 's/&/\&amp;/g; s/</\&lt;/g' "$f" > "site/$name.txt"
                echo "<li><a href=\"$name.txt\">$title</a></li>"
              done
              echo '</ul></body></html>'
            } > site/index.html
            echo "PAGES=$(ls site/*.txt | wc -l)" >> "$JOB_ENV"'';
        }
        { name = "report"; bash = ''echo "rendered $PAGES pages"''; }
      ];
      outputs.site = "site";
    };

    check = {
      needs = [ "build" ];
      inputs = [ "site" ];
      retry = { maxAttempts = 2; backoff = "constant"; minTime = 1; };
      steps = [
        {
          name = "links";
          bash = ''
            cd site
            for href in $(grep -o 'href="[^"]*"' index.html | cut -d'"' -f2); do
              [ -s "$href" ] || { echo "missing page $href"; exit 1; }
            done
            echo "all pages present"'';
        }
      ];
    };

    package = {
      needs = [ "check" ];
      inputs = [ { name = "site"; path = "public"; } ];
      timeout = "2m";
      steps = [
        {
          name = "tar";
          bash = ''
            tar -czf site.tar.gz -C public .
            echo "site.tar.gz: $(tar -tzf site.tar.gz | wc -l) entries"'';
        }
      ];
      outputs.tarball = "site.tar.gz";
    };

    notify = {
      needs = [ "package" "version" ];
      condition = "always()";
      steps = [
        { name = "summary"; bash = ''echo "pipeline finished for version $NEEDS_VERSION_VERSION"''; }
      ];
    };
  };
}
