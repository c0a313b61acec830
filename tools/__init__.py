"""Development tools of Elig (mutation testing, fuzzing); see tools/README.md."""
