"""forkflow: a doit/nox build-and-release pipeline for forks of Prefect."""
