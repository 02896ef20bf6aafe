# The two commands of the README: `make run` and `make test`.
.PHONY: run test build install

build:
	go build -o bin/iii ./cmd/iii

run: build
	./bin/iii $(ARGS)

install:
	go install ./cmd/iii

test:
	./scripts/test.sh
