//! ISO 3166-1 alpha-2 country codes (officially assigned), for shipping addresses.

const ALPHA_2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES \
ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO \
IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK \
ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR \
PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK \
TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

pub fn is_iso_3166_alpha2(code: &str) -> bool {
    code.len() == 2 && ALPHA_2.split(' ').any(|c| c == code)
}

#[cfg(test)]
mod tests {
    #[test]
    fn knows_the_249_assigned_codes() {
        assert_eq!(super::ALPHA_2.split(' ').count(), 249);
        assert!(super::is_iso_3166_alpha2("US"));
        assert!(super::is_iso_3166_alpha2("DE"));
        assert!(!super::is_iso_3166_alpha2("us"));
        assert!(!super::is_iso_3166_alpha2("UK"));
        assert!(!super::is_iso_3166_alpha2("USA"));
    }
}
