# The two commands of the README: `make run` and `make test`.
.PHONY: run test build install bench-readme

build:
	go build -o bin/iii ./cmd/iii

run: build
	./bin/iii $(ARGS)

install:
	go install ./cmd/iii

test:
	./scripts/test.sh

# Run iii bench and publish its table in the README (see scripts/bench-readme.sh).
bench-readme:
	./scripts/bench-readme.sh
