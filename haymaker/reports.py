"""The platform's ``reports`` container (azure-storage-blob): answer keys outlive the workspace's retention.

In Azure, ``HAYMAKER_REPORTS_CONTAINER_URL`` (the platform's ``reportsContainerUrl`` output), or the
``reports`` container beside the ledger's tables when only ``HAYMAKER_LEDGER_ENDPOINT`` is set, with the
operator's Entra credential (the account allows no shared key; Storage Blob Data Contributor). Without
either, the ``reports`` container of the account in ``HAYMAKER_LEDGER_CONNECTION_STRING``, or of Azurite
on 127.0.0.1:10000, created on first use there (in Azure the platform stack creates it).
"""

from __future__ import annotations

from dataclasses import dataclass

from haymaker.errors import HayMakerError, InvalidInput

REPORTS_CONTAINER = "reports"
AZURITE = "UseDevelopmentStorage=true"  # Azurite's well-known account; blobs on 127.0.0.1:10000
CLIENT_OPTIONS = {"connection_timeout": 5, "read_timeout": 60}


def _options() -> dict:
    """Two more tries a second apart: the storage client's default waits 15 s and more between tries,
    a minute and a half in all, before an unreachable container is reported."""
    from azure.storage.blob import LinearRetry

    return {**CLIENT_OPTIONS, "retry_policy": LinearRetry(backoff=1, retry_total=2, random_jitter_range=0)}


class ReportStoreError(HayMakerError):
    """The report could not be stored: the message says where and what to change."""


@dataclass(frozen=True)
class Stored:
    name: str
    url: str


class ReportStore:
    def __init__(self, container, create: bool = False):
        self._container = container
        self._create = create

    @classmethod
    def from_config(cls, config, env=None) -> "ReportStore":
        from azure.storage.blob import BlobServiceClient, ContainerClient

        url = config.get("reports_container_url") or _beside_ledger(config.get("ledger_endpoint"))
        if url:
            from haymaker.cloud import Endpoints, azure_credential

            try:
                return cls(ContainerClient.from_container_url(
                    url, credential=azure_credential(Endpoints.from_config(config), env), **_options()))
            except ValueError:
                raise InvalidInput(f"reports_container_url from {config.source('reports_container_url')} is not a "
                                   "container URL: use the platform's reportsContainerUrl output") from None
        connection_string = config.get("ledger_connection_string") or AZURITE
        try:
            service = BlobServiceClient.from_connection_string(connection_string, **_options())
        except ValueError:
            raise InvalidInput("ledger_connection_string is not a storage connection string: see .env.example") from None
        return cls(service.get_container_client(REPORTS_CONTAINER), create=True)

    @property
    def where(self) -> str:
        return self._container.url.split("?", 1)[0]  # never a SAS token

    def put(self, run_id: str, files: dict[str, tuple[str, str]]) -> list[Stored]:
        """Write ``{name: (text, content type)}`` as ``<run_id>/<name>``, replacing an earlier version."""
        from azure.core.exceptions import (AzureError, ClientAuthenticationError, HttpResponseError,
                                           ResourceNotFoundError)
        from azure.storage.blob import ContentSettings

        stored = []
        try:
            if self._create and not self._container.exists():
                self._container.create_container()
            for name, (text, content_type) in files.items():
                blob = self._container.upload_blob(f"{run_id}/{name}", text.encode("utf-8"), overwrite=True,
                                                   content_settings=ContentSettings(content_type=content_type))
                stored.append(Stored(f"{run_id}/{name}", blob.url.split("?", 1)[0]))
        except ResourceNotFoundError:
            raise ReportStoreError(f"the reports container {self.where} does not exist: deploy the platform stack "
                                   "(it creates `reports`) or fix HAYMAKER_REPORTS_CONTAINER_URL") from None
        except ClientAuthenticationError as e:
            raise ReportStoreError(f"cannot write to {self.where}: {_first(e)}: sign in (`az login`) as an identity "
                                   "with Storage Blob Data Contributor on the container") from None
        except HttpResponseError as e:
            if e.status_code == 403:
                raise ReportStoreError(f"{self.where} refused the report (403 {e.error_code}): the identity needs "
                                       "Storage Blob Data Contributor on the container") from None
            raise ReportStoreError(f"{self.where} did not take the report ({e.status_code} {e.error_code}): "
                                   "try again") from None
        except AzureError as e:
            raise ReportStoreError(f"cannot reach {self.where}: {_first(e)}: check HAYMAKER_REPORTS_CONTAINER_URL (locally: "
                                   "start Azurite with `bash scripts/azurite.sh`)") from None
        return stored


def _beside_ledger(table_endpoint: str | None) -> str | None:
    """The platform keeps ``reports`` in the ledger's storage account: its blob endpoint is the table
    endpoint's with ``blob`` for ``table`` (in every Azure cloud)."""
    if not table_endpoint:
        return None
    if ".table." not in table_endpoint:
        raise InvalidInput(f"cannot tell the reports container from the ledger endpoint {table_endpoint}: set "
                           "HAYMAKER_REPORTS_CONTAINER_URL to the platform's reportsContainerUrl output")
    return table_endpoint.rstrip("/").replace(".table.", ".blob.", 1) + "/" + REPORTS_CONTAINER


def _first(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
