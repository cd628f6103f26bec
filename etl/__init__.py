"""Stages that move data: reading OSM files now; imagery fetching and embedding later."""
