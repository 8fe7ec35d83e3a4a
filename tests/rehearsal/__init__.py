"""Stand-ins for the paper study's Hub models, built offline for rehearsing the study's code paths."""
