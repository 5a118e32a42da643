"""Code for the people working on the project, not for the pipeline: project copies for the tests
and benchmarks that run real `dvc` commands, and the generator of docs/results.md."""
