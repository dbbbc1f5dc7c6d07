"""The medallion: bronze -> silver -> gold transforms and the upserts that write them."""
