# The two commands of the README: `make run` and `make test`.
.PHONY: run test build

build:
	go build -o bin/iii ./cmd/iii

run: build
	./bin/iii

test:
	./scripts/test.sh
