//! Which `acs.allowed_download_hosts` suffixes can be trusted with a request signed by the ACS
//! key. A suffix must be narrow enough that only Microsoft's recording storage lives under it:
//! a zone where any customer can name a host of their own would let any of them receive one.

/// Zones where any customer can create a host name (a storage account, a web app, a CDN
/// endpoint, a public IP's DNS label), so a suffix inside one admits strangers.
const SHARED_ZONES: &[&str] = &[
    // Azure Storage (blob, file, queue, table, dfs, static web), Service Bus, SQL: *.windows.net.
    "windows.net",
    "cloudapp.azure.com",
    "cloudapp.net",
    "azurewebsites.net",
    "azure-api.net",
    "trafficmanager.net",
    "azurefd.net",
    "azureedge.net",
    "azurestaticapps.net",
    "azurecontainerapps.io",
    // Every ACS resource; this deployment's own endpoint is always allowed without a suffix.
    "communication.azure.com",
    // The same kind of zone at the other large clouds.
    "amazonaws.com",
    "cloudfront.net",
    "googleapis.com",
    "appspot.com",
];

/// Why a suffix is refused, for the operator.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SuffixProblem {
    NotAHostSuffix,
    TooBroad,
    SharedZone(&'static str),
}

impl SuffixProblem {
    pub(crate) fn explain(&self, suffix: &str) -> String {
        match self {
            SuffixProblem::NotAHostSuffix => format!(
                "`{suffix}` is not a host suffix (DNS labels of letters, digits and `-`, separated by dots, such as .asm.skype.com)"
            ),
            SuffixProblem::TooBroad => format!(
                "`{suffix}` has fewer than three labels, so it matches hosts far beyond ACS recording storage; list a narrower suffix such as .asm.skype.com"
            ),
            SuffixProblem::SharedZone(zone) => format!(
                "`{suffix}` lies in {zone}, where any customer can create a host, so a stranger's host could receive requests signed with the ACS key; list only ACS storage suffixes such as .asm.skype.com"
            ),
        }
    }
}

/// Checks one configured suffix (a leading dot is optional, as in the guard).
pub(crate) fn check_suffix(raw: &str) -> Result<(), SuffixProblem> {
    let suffix = raw
        .trim()
        .strip_prefix('.')
        .unwrap_or(raw.trim())
        .to_ascii_lowercase();
    let labels: Vec<&str> = suffix.split('.').collect();
    let well_formed = labels.iter().all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !well_formed {
        return Err(SuffixProblem::NotAHostSuffix);
    }
    if let Some(zone) = SHARED_ZONES
        .iter()
        .find(|zone| suffix == **zone || suffix.ends_with(&format!(".{zone}")))
    {
        return Err(SuffixProblem::SharedZone(zone));
    }
    if labels.len() < 3 {
        return Err(SuffixProblem::TooBroad);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acs_storage_suffixes_pass() {
        for suffix in [
            ".asm.skype.com",
            "asm.skype.com",
            ".asyncgw.teams.microsoft.com",
            ".ams.gov.teams.microsoft.us",
        ] {
            assert_eq!(check_suffix(suffix), Ok(()), "{suffix}");
        }
    }

    #[test]
    fn suffixes_of_fewer_than_three_labels_are_too_broad() {
        assert_eq!(check_suffix(".skype.com"), Err(SuffixProblem::TooBroad));
        assert_eq!(check_suffix(".com"), Err(SuffixProblem::TooBroad));
    }

    #[test]
    fn suffixes_in_multi_tenant_zones_are_refused() {
        for suffix in [
            ".blob.core.windows.net",
            ".core.windows.net",
            ".windows.net",
            ".cloudapp.azure.com",
            ".westeurope.cloudapp.azure.com",
            ".azurewebsites.net",
            ".s3.amazonaws.com",
        ] {
            assert!(
                matches!(check_suffix(suffix), Err(SuffixProblem::SharedZone(_))),
                "{suffix}"
            );
        }
    }

    #[test]
    fn what_is_not_a_host_suffix_is_refused() {
        for suffix in [
            "",
            ".",
            "..asm.skype.com",
            "asm.skype.com/x",
            "*.asm.skype.com",
            "a b.c.d",
        ] {
            assert_eq!(
                check_suffix(suffix),
                Err(SuffixProblem::NotAHostSuffix),
                "{suffix:?}"
            );
        }
    }
}
