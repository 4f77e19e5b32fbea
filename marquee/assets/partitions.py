"""One dynamic partition per title: the key is a validated title id, never a path."""

from dagster import DynamicPartitionsDefinition

TITLES_PARTITIONS_NAME = "titles"
titles_partitions = DynamicPartitionsDefinition(name=TITLES_PARTITIONS_NAME)
