#!/bin/bash
# The orbit-client recipe, shaped like Prefect's: copy the tree to $TMPDIR,
# trim it there, and lay the client's pyproject.toml and README over the root.

CWD=$(pwd)

if [ -z ${TMPDIR+x} ];
    then
        TMPDIR=$(mktemp -d);
        echo "Using workspace at $TMPDIR";
    else echo "Using workspace at $TMPDIR";
fi

cp -rf ./ $TMPDIR
cd $TMPDIR/src/orbit

rm -rf cli/
rm -rf testing
rm -rf server/__init__.py
find ./server \
    -not -path "./server" \
    -not -path "./server/api" \
    -not -path "./server/api/*" \
    -delete

cd $TMPDIR
cp client/pyproject.toml .
cp client/README.md .

cd $CWD
