"""Every test of the PostHog files the replay covers, with the commit read, and the reason for each test that
is not replayed (`test_inventory.py` checks the two lists add up to each file's tests).

Paths are under products/batch_exports/backend/tests/api/ in PostHog/posthog, except Gen-1's, which is
posthog/api/test/batch_exports/test_backfill.py. test_test.py there is the older copy of
test_destination_tests.py (same tests), and test_serializers.py and the destination_tests/ folder are unit
tests of serializers and of test steps against real destinations: none of the three is replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ORM = "needs a row written with the ORM that the API cannot make"
FLAG_ON = "needs a feature flag off that the sandbox serves on (docs/sandbox.md, 'Feature flags')"
FLAG_OFF = "needs a feature flag on that the sandbox serves off (docs/sandbox.md, 'Feature flags')"
TEMPORAL = "Temporal only: removes the schedule behind the API's back"
INTEGRATION_CONFIG = "needs an integration whose stored config the test writes; sandbox integrations hold a kind only"


@dataclass
class Source:
    commit: str
    tests: list[str]
    skipped: dict[str, str] = field(default_factory=dict)


SOURCES: dict[str, Source] = {
    "test_create.py": Source(
        "1ea05ce0476f219b122332644395a9207a4d532e",
        [
            "test_create_batch_export_with_interval_schedule",
            "test_create_batch_export_with_different_intervals_timezones_and_interval_offsets",
            "test_cannot_create_a_batch_export_for_another_organization",
            "test_cannot_create_batch_export_with_integration_from_another_team",
            "test_cannot_create_a_batch_export_with_higher_frequencies_if_not_enabled",
            "test_create_batch_export_with_custom_schema",
            "test_create_batch_export_fails_with_invalid_query",
            "test_create_batch_export_with_hogql_model",
            "test_create_batch_export_with_hogql_model_allows_query_without_placeholders",
            "test_create_batch_export_with_hogql_model_fails_with_invalid_request",
            "test_cannot_create_batch_export_with_hogql_model_if_not_enabled",
            "test_create_batch_export_with_invalid_config",
            "test_creating_batch_export_with_filters",
        ],
        {
            "test_cannot_create_a_batch_export_with_higher_frequencies_if_not_enabled": FLAG_ON,
            "test_create_batch_export_with_hogql_model_allows_query_without_placeholders": (
                "needs a data-warehouse table and access-control rows, outside the batch-exports API"
            ),
            "test_cannot_create_batch_export_with_hogql_model_if_not_enabled": FLAG_ON,
        },
    ),
    "test_create_s3.py": Source(
        "0823efdb6e2cc63aaee701e7497a3f75ef5b4916",
        [
            "test_create_s3_family_batch_export",
            "test_create_s3_family_batch_export_requires_an_integration",
            "test_create_legacy_s3_type_is_rejected",
            "test_create_s3_family_batch_export_validates_empty_inputs",
            "test_create_s3_family_batch_export_rejects_inapplicable_fields",
            "test_create_s3_batch_export_validates_file_format_and_compression",
            "test_create_s3_family_batch_export_using_integration",
            "test_create_s3_family_batch_export_rejects_mismatched_integration_kind",
            "test_create_s3_family_batch_export_rejects_an_explicit_legacy_parquet_extension",
        ],
    ),
    "test_create_redshift.py": Source(
        "0aea4adf57b9d8122c4c854add8668b3329ef161",
        [
            "test_create_redshift_batch_export_validates_copy_inputs",
            "test_create_redshift_batch_export_rejects_invalid_authorization_type",
            "test_create_redshift_batch_export_with_aws_integration",
            "test_create_redshift_batch_export_with_plain_integration",
            "test_create_redshift_batch_export_validates_integration",
            "test_create_redshift_batch_export_validates_copy_integration_ids",
        ],
        {"test_create_redshift_batch_export_with_plain_integration": INTEGRATION_CONFIG},
    ),
    "test_create_redshift_integration.py": Source(
        "f14200854557f6d104263136044e00df815909f4",
        [
            "test_creating_redshift_batch_export_using_integration",
            "test_creating_redshift_batch_export_without_integration_is_rejected",
            "test_creating_redshift_batch_export_rejects_mismatched_integration_kind",
            "test_creating_redshift_batch_export_validates_destination_host",
        ],
    ),
    "test_create_postgres.py": Source(
        "617ee3f5655864ea72c1fd66422564d36d5c2f59",
        [
            "test_creating_postgres_batch_export_using_integration",
            "test_creating_postgres_batch_export_validates_integration_host",
            "test_creating_postgres_batch_export_without_integration_is_rejected",
        ],
        {"test_creating_postgres_batch_export_validates_integration_host": INTEGRATION_CONFIG},
    ),
    "test_create_snowflake.py": Source(
        "2a0ef58eec5324e7dbb56fd6589169e3af85fe5f",
        [
            "test_create_snowflake_batch_export_with_inline_credentials_is_rejected",
            "test_create_snowflake_batch_export_using_integration",
            "test_create_snowflake_batch_export_rejects_mismatched_integration_kind",
        ],
    ),
    "test_create_databricks.py": Source(
        "7286c36342287a089ed54518dcb3aed529470e85",
        [
            "test_creating_databricks_batch_export_using_integration",
            "test_creating_databricks_batch_export_fails_if_integration_is_missing",
            "test_creating_databricks_batch_export_fails_if_integration_is_invalid",
            "test_creating_databricks_batch_export_fails_if_integration_does_not_exist",
            "test_creating_databricks_batch_export_fails_if_integration_is_not_the_correct_type",
        ],
        {"test_creating_databricks_batch_export_fails_if_integration_is_invalid": INTEGRATION_CONFIG},
    ),
    "test_create_azure_blob.py": Source(
        "19194eff159b62e33eb703f45b34ec7cf625a1ec", ["test_creating_azure_blob_batch_export_using_integration"]
    ),
    "test_create_http.py": Source(
        "ce5def3b7907594c97ffa23db16dbdde07a2554c", ["test_creating_http_batch_export_only_allows_events_model"]
    ),
    "test_create_workflows.py": Source(
        "0231c7958dcb8bfb5c5b20b04d0ab1b043ee4ab8",
        [
            "test_creating_workflows_batch_export",
            "test_creating_workflows_batch_export_fails_if_feature_flag_is_not_enabled",
        ],
        {"test_creating_workflows_batch_export": FLAG_OFF},
    ),
    "test_update.py": Source(
        "0f759a5a455345c44d6a56e9a997146ceaf4e033",
        [
            "test_can_put_config",
            "test_can_patch_config",
            "test_can_patch_schedule_configuration",
            "test_can_patch_config_with_invalid_old_values",
            "test_patch_rejects_destination_type_change",
            "test_put_rejects_destination_type_change",
            "test_can_patch_hogql_query",
            "test_patch_returns_error_on_unsupported_hogql_query",
            "test_can_update_batch_export_with_integration",
            "test_can_update_batch_export_with_integration_to_none",
            "test_updating_legacy_postgres_batch_export_keeps_inline_credentials",
        ],
        {
            "test_can_patch_config_with_invalid_old_values": ORM,
            "test_updating_legacy_postgres_batch_export_keeps_inline_credentials": ORM,
        },
    ),
    "test_update_s3.py": Source(
        "0823efdb6e2cc63aaee701e7497a3f75ef5b4916",
        [
            "test_updating_s3_family_batch_export_requires_an_integration",
            "test_updating_integration_backed_s3_export_allows_config_patch_with_integration",
            "test_updating_migrated_s3_batch_export_ignores_credentials_left_in_stored_config",
            "test_updating_legacy_s3_batch_export_is_rejected",
            "test_updating_s3_family_batch_export_preserves_legacy_parquet_extension",
            "test_updating_s3_family_batch_export_pins_naming_from_the_stored_config",
            "test_updating_s3_family_batch_export_rejects_turning_legacy_naming_back_on",
            "test_updating_s3_family_batch_export_lets_a_grandfathered_export_keep_legacy_naming",
        ],
        {
            "test_updating_migrated_s3_batch_export_ignores_credentials_left_in_stored_config": ORM,
            "test_updating_legacy_s3_batch_export_is_rejected": ORM,
            "test_updating_s3_family_batch_export_preserves_legacy_parquet_extension": ORM,
            "test_updating_s3_family_batch_export_pins_naming_from_the_stored_config": ORM,
            "test_updating_s3_family_batch_export_lets_a_grandfathered_export_keep_legacy_naming": ORM,
        },
    ),
    "test_update_redshift.py": Source(
        "1174c239ad2bf211c88e854856506ab70ccc7d9e",
        [
            "test_can_patch_redshift_batch_export",
            "test_can_patch_redshift_batch_export_switching_authorization_to_credentials",
            "test_patching_redshift_batch_export_rejects_switching_copy_integration_to_inline",
            "test_can_patch_redshift_batch_export_swapping_copy_integration",
        ],
    ),
    "test_update_snowflake.py": Source(
        "19194eff159b62e33eb703f45b34ec7cf625a1ec",
        [
            "test_can_patch_snowflake_batch_export_credentials",
            "test_switching_snowflake_auth_type_to_keypair_requires_private_key",
            "test_updating_snowflake_batch_export_rejects_removing_integration",
            "test_updating_integration_backed_snowflake_export_allows_config_patch_with_integration",
        ],
        {
            "test_can_patch_snowflake_batch_export_credentials": (
                "creates a Snowflake export with inline credentials, which the newest code refuses on create"
            ),
            "test_switching_snowflake_auth_type_to_keypair_requires_private_key": (
                "creates a Snowflake export with inline credentials, which the newest code refuses on create"
            ),
        },
    ),
    "test_update_postgres.py": Source(
        "705fc527cc1318e25d510348581d08731595fef8",
        [
            "test_updating_connection_backed_postgres_export_rejects_inline_connection_settings",
            "test_updating_connection_backed_postgres_export_allows_other_config",
            "test_updating_inline_credential_postgres_export_still_accepts_them",
        ],
        {
            "test_updating_connection_backed_postgres_export_rejects_inline_connection_settings": (
                "newer than the view code read (exports.py 0551d5e has no such rule): its message is unknown"
            ),
            "test_updating_inline_credential_postgres_export_still_accepts_them": ORM,
        },
    ),
    "test_delete.py": Source(
        "327ae909f19e1d44c8d4b9b275288c4a917f0670",
        [
            "test_delete_batch_export",
            "test_delete_batch_export_cancels_backfills",
            "test_cannot_delete_export_of_other_organizations",
            "test_deletes_are_partitioned_by_team_id",
            "test_delete_batch_export_even_without_underlying_schedule",
        ],
        {"test_delete_batch_export_even_without_underlying_schedule": TEMPORAL},
    ),
    "test_get.py": Source(
        "06c7975d8e1bd1d6216460d7488921f5593a6c39",
        [
            "test_can_get_exports_for_your_organizations",
            "test_cannot_get_exports_for_other_organizations",
            "test_batch_exports_are_partitioned_by_team",
            "test_serialization_of_destination_config",
        ],
    ),
    "test_list.py": Source(
        "16e74d8d3f4fab4f4fd391d0905095d7f69c6fa9",
        [
            "test_list_batch_exports",
            "test_cannot_list_batch_exports_for_other_organizations",
            "test_list_is_partitioned_by_team",
            "test_list_filters_workflows_destination",
        ],
        {"test_list_filters_workflows_destination": FLAG_OFF + " (a Workflows export)"},
    ),
    "test_pause.py": Source(
        "07be8252c706a80b73618f5bc845f277fddc58cd",
        [
            "test_pause_and_unpause_batch_export",
            "test_cannot_pause_and_unpause_batch_exports_of_other_organizations",
            "test_pause_and_unpause_are_partitioned_by_team_id",
            "test_pause_batch_export_that_is_already_paused",
            "test_unpause_batch_export_that_is_already_unpaused",
            "test_pause_non_existent_batch_export",
            "test_unpause_can_trigger_a_backfill",
        ],
        {"test_pause_non_existent_batch_export": TEMPORAL},
    ),
    "test_runs.py": Source(
        "144af8154b8b5c9be1b70b84e9c40460a599c686",
        [
            "test_can_get_export_runs_for_your_organizations",
            "test_cannot_get_exports_for_other_organizations",
            "test_batch_exports_are_partitioned_by_team",
            "test_cancelling_a_batch_export_run",
            "test_get_batch_export_runs_filtered_by_status",
            "test_get_batch_export_runs_rejects_unknown_status",
            "test_get_batch_export_runs_date_filter_depends_on_ordering",
            "test_cannot_cancel_completed_batch_export_run",
        ],
    ),
    "test_logs.py": Source(
        "62c6850af8dc1028cf1ea08673784ddaa193b701", ["test_log_entries_with_scoped_personal_api_key"]
    ),
    "test_destination_tests.py": Source(
        "06abd91f3ccf27734bcd6601dc407f3b89a2f9d8",
        [
            "test_can_get_test_for_destination",
            "test_get_test_for_destination_without_a_test_is_not_found",
            "test_can_run_s3_test_step_for_new_destination",
            "test_can_run_s3_test_step_for_destination",
            "test_run_test_step_rejects_destination_type_change",
            "test_can_run_s3_test_step_with_additional_fields",
            "test_can_run_bigquery_test_step_with_castable_type",
            "test_can_run_databricks_test_step_for_new_destination",
            "test_integration_is_required_for_databricks_destination_tests",
        ],
        {"test_can_run_s3_test_step_with_additional_fields": ORM},
    ),
    "backfills/test_create.py": Source(
        "24b3f0129d837d9845cb4dfd208b06430e4fd79e",
        [
            "test_batch_export_backfill_success",
            "test_batch_export_backfill_for_daily_schedule",
            "test_batch_export_backfill_for_daily_schedule_with_datetime_strings_fails",
            "test_batch_export_backfill_for_weekly_schedule",
            "test_batch_export_backfill_for_weekly_schedule_with_datetime_strings_fails",
            "test_batch_export_backfill_for_weekly_schedule_fails_if_day_of_week_is_incorrect",
            "test_batch_export_backfill_with_non_isoformatted_dates",
            "test_batch_export_backfill_with_end_at_in_the_future",
            "test_batch_export_backfill_with_naive_bounds",
            "test_batch_export_backfill_with_start_at_after_end_at",
            "test_cannot_trigger_backfill_for_another_organization",
            "test_backfill_is_partitioned_by_team_id",
            "test_batch_export_backfill_created_in_timezone",
            "test_batch_export_earliest_backfill_rejected_without_feature_flag",
            "test_backfill_rejected_when_team_at_concurrent_limit",
            "test_backfill_allowed_when_team_below_concurrent_limit",
            "test_other_teams_backfills_do_not_count_toward_concurrent_limit",
            "test_batch_export_earliest_backfill_allowed_with_feature_flag",
        ],
        {"test_batch_export_earliest_backfill_allowed_with_feature_flag": FLAG_OFF},
    ),
    "backfills/test_list.py": Source(
        "5f3285477dd2b61c8fb0c8f15cba3e90d08efb4e",
        [
            "test_list_batch_export_backfills",
            "test_cannot_list_batch_export_backfills_for_other_organizations",
            "test_list_is_partitioned_by_team",
            "test_list_batch_export_backfills_pages_over_tied_timestamps",
        ],
    ),
    "backfills/test_get.py": Source(
        "07be8252c706a80b73618f5bc845f277fddc58cd",
        [
            "test_can_get_backfills_for_your_organizations",
            "test_cannot_get_backfills_for_other_organizations",
            "test_backfills_are_partitioned_by_team",
        ],
    ),
    "backfills/test_cancel.py": Source(
        "6598c3ee0475f98af2eec66bb3ca72904df8b322", ["test_cancelling_a_batch_export_backfill"]
    ),
    "backfills/test_read_only.py": Source(
        "d96ff7b3f787d87cc83876d092b60d12bc95b920",
        ["test_cannot_delete_batch_export_backfill", "test_cannot_update_batch_export_backfill"],
    ),
    "gen1/test_backfill.py": Source(
        "02284db1d6f4432f99c1e3a98c01096aa9a345f2",
        [
            "test_batch_export_backfill",
            "test_batch_export_backfill_with_non_isoformatted_dates",
            "test_batch_export_backfill_with_end_at_in_the_future",
            "test_batch_export_backfill_with_naive_bounds",
            "test_batch_export_backfill_with_start_at_after_end_at",
            "test_cannot_trigger_backfill_for_another_organization",
            "test_backfill_is_partitioned_by_team_id",
            "test_batch_export_backfill_created_in_timezone",
            "test_batch_export_backfill_when_start_at_is_before_earliest_backfill_start_at",
            "test_batch_export_backfill_when_backfill_end_at_is_before_earliest_event",
            "test_batch_export_backfill_when_no_data_exists",
        ],
        {
            "test_batch_export_backfill_when_no_data_exists": "needs a project without events; the sandbox's data source always has some"
        },
    ),
}
