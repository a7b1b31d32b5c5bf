//! Where a country is, roughly: ISO 3166-1 alpha-2 code → centroid, and the great-circle distance
//! between two countries, for the impossible-travel feature.
//!
//! Centroids (rounded to 0.1°) from Google's DSPL canonical `countries.csv`. A country is a big place,
//! so distances are coarse; impossible travel compares them against a generous speed (1000 km/h by
//! default), which is what makes the coarseness harmless.

/// `(code, latitude, longitude)`, sorted by code for binary search.
#[rustfmt::skip]
const CENTROIDS: [([u8; 2], f32, f32); 242] = [
    (*b"AD", 42.5, 1.6), (*b"AE", 23.4, 53.8), (*b"AF", 33.9, 67.7), (*b"AG", 17.1, -61.8),
    (*b"AI", 18.2, -63.1), (*b"AL", 41.2, 20.2), (*b"AM", 40.1, 45.0), (*b"AO", -11.2, 17.9),
    (*b"AQ", -75.3, -0.1), (*b"AR", -38.4, -63.6), (*b"AS", -14.3, -170.1), (*b"AT", 47.5, 14.6),
    (*b"AU", -25.3, 133.8), (*b"AW", 12.5, -70.0), (*b"AZ", 40.1, 47.6), (*b"BA", 43.9, 17.7),
    (*b"BB", 13.2, -59.5), (*b"BD", 23.7, 90.4), (*b"BE", 50.5, 4.5), (*b"BF", 12.2, -1.6),
    (*b"BG", 42.7, 25.5), (*b"BH", 25.9, 50.6), (*b"BI", -3.4, 29.9), (*b"BJ", 9.3, 2.3),
    (*b"BM", 32.3, -64.8), (*b"BN", 4.5, 114.7), (*b"BO", -16.3, -63.6), (*b"BR", -14.2, -51.9),
    (*b"BS", 25.0, -77.4), (*b"BT", 27.5, 90.4), (*b"BV", -54.4, 3.4), (*b"BW", -22.3, 24.7),
    (*b"BY", 53.7, 28.0), (*b"BZ", 17.2, -88.5), (*b"CA", 56.1, -106.3), (*b"CC", -12.2, 96.9),
    (*b"CD", -4.0, 21.8), (*b"CF", 6.6, 20.9), (*b"CG", -0.2, 15.8), (*b"CH", 46.8, 8.2),
    (*b"CI", 7.5, -5.5), (*b"CK", -21.2, -159.8), (*b"CL", -35.7, -71.5), (*b"CM", 7.4, 12.4),
    (*b"CN", 35.9, 104.2), (*b"CO", 4.6, -74.3), (*b"CR", 9.7, -83.8), (*b"CU", 21.5, -77.8),
    (*b"CV", 16.0, -24.0), (*b"CX", -10.4, 105.7), (*b"CY", 35.1, 33.4), (*b"CZ", 49.8, 15.5),
    (*b"DE", 51.2, 10.5), (*b"DJ", 11.8, 42.6), (*b"DK", 56.3, 9.5), (*b"DM", 15.4, -61.4),
    (*b"DO", 18.7, -70.2), (*b"DZ", 28.0, 1.7), (*b"EC", -1.8, -78.2), (*b"EE", 58.6, 25.0),
    (*b"EG", 26.8, 30.8), (*b"EH", 24.2, -12.9), (*b"ER", 15.2, 39.8), (*b"ES", 40.5, -3.7),
    (*b"ET", 9.1, 40.5), (*b"FI", 61.9, 25.7), (*b"FJ", -16.6, 179.4), (*b"FK", -51.8, -59.5),
    (*b"FM", 7.4, 150.6), (*b"FO", 61.9, -6.9), (*b"FR", 46.2, 2.2), (*b"GA", -0.8, 11.6),
    (*b"GB", 55.4, -3.4), (*b"GD", 12.3, -61.6), (*b"GE", 42.3, 43.4), (*b"GF", 3.9, -53.1),
    (*b"GG", 49.5, -2.6), (*b"GH", 7.9, -1.0), (*b"GI", 36.1, -5.3), (*b"GL", 71.7, -42.6),
    (*b"GM", 13.4, -15.3), (*b"GN", 9.9, -9.7), (*b"GP", 17.0, -62.1), (*b"GQ", 1.7, 10.3),
    (*b"GR", 39.1, 21.8), (*b"GS", -54.4, -36.6), (*b"GT", 15.8, -90.2), (*b"GU", 13.4, 144.8),
    (*b"GW", 11.8, -15.2), (*b"GY", 4.9, -58.9), (*b"HK", 22.4, 114.1), (*b"HM", -53.1, 73.5),
    (*b"HN", 15.2, -86.2), (*b"HR", 45.1, 15.2), (*b"HT", 19.0, -72.3), (*b"HU", 47.2, 19.5),
    (*b"ID", -0.8, 113.9), (*b"IE", 53.4, -8.2), (*b"IL", 31.0, 34.9), (*b"IM", 54.2, -4.5),
    (*b"IN", 20.6, 79.0), (*b"IO", -6.3, 71.9), (*b"IQ", 33.2, 43.7), (*b"IR", 32.4, 53.7),
    (*b"IS", 65.0, -19.0), (*b"IT", 41.9, 12.6), (*b"JE", 49.2, -2.1), (*b"JM", 18.1, -77.3),
    (*b"JO", 30.6, 36.2), (*b"JP", 36.2, 138.3), (*b"KE", -0.0, 37.9), (*b"KG", 41.2, 74.8),
    (*b"KH", 12.6, 105.0), (*b"KI", -3.4, -168.7), (*b"KM", -11.9, 43.9), (*b"KN", 17.4, -62.8),
    (*b"KP", 40.3, 127.5), (*b"KR", 35.9, 127.8), (*b"KW", 29.3, 47.5), (*b"KY", 19.5, -80.6),
    (*b"KZ", 48.0, 66.9), (*b"LA", 19.9, 102.5), (*b"LB", 33.9, 35.9), (*b"LC", 13.9, -61.0),
    (*b"LI", 47.2, 9.6), (*b"LK", 7.9, 80.8), (*b"LR", 6.4, -9.4), (*b"LS", -29.6, 28.2),
    (*b"LT", 55.2, 23.9), (*b"LU", 49.8, 6.1), (*b"LV", 56.9, 24.6), (*b"LY", 26.3, 17.2),
    (*b"MA", 31.8, -7.1), (*b"MC", 43.8, 7.4), (*b"MD", 47.4, 28.4), (*b"ME", 42.7, 19.4),
    (*b"MG", -18.8, 46.9), (*b"MH", 7.1, 171.2), (*b"MK", 41.6, 21.7), (*b"ML", 17.6, -4.0),
    (*b"MM", 21.9, 96.0), (*b"MN", 46.9, 103.8), (*b"MO", 22.2, 113.5), (*b"MP", 17.3, 145.4),
    (*b"MQ", 14.6, -61.0), (*b"MR", 21.0, -10.9), (*b"MS", 16.7, -62.2), (*b"MT", 35.9, 14.4),
    (*b"MU", -20.3, 57.6), (*b"MV", 3.2, 73.2), (*b"MW", -13.3, 34.3), (*b"MX", 23.6, -102.6),
    (*b"MY", 4.2, 102.0), (*b"MZ", -18.7, 35.5), (*b"NA", -23.0, 18.5), (*b"NC", -20.9, 165.6),
    (*b"NE", 17.6, 8.1), (*b"NF", -29.0, 168.0), (*b"NG", 9.1, 8.7), (*b"NI", 12.9, -85.2),
    (*b"NL", 52.1, 5.3), (*b"NO", 60.5, 8.5), (*b"NP", 28.4, 84.1), (*b"NR", -0.5, 166.9),
    (*b"NU", -19.1, -169.9), (*b"NZ", -40.9, 174.9), (*b"OM", 21.5, 55.9), (*b"PA", 8.5, -80.8),
    (*b"PE", -9.2, -75.0), (*b"PF", -17.7, -149.4), (*b"PG", -6.3, 144.0), (*b"PH", 12.9, 121.8),
    (*b"PK", 30.4, 69.3), (*b"PL", 51.9, 19.1), (*b"PM", 46.9, -56.3), (*b"PN", -24.7, -127.4),
    (*b"PR", 18.2, -66.6), (*b"PS", 32.0, 35.2), (*b"PT", 39.4, -8.2), (*b"PW", 7.5, 134.6),
    (*b"PY", -23.4, -58.4), (*b"QA", 25.4, 51.2), (*b"RE", -21.1, 55.5), (*b"RO", 45.9, 25.0),
    (*b"RS", 44.0, 21.0), (*b"RU", 61.5, 105.3), (*b"RW", -1.9, 29.9), (*b"SA", 23.9, 45.1),
    (*b"SB", -9.6, 160.2), (*b"SC", -4.7, 55.5), (*b"SD", 12.9, 30.2), (*b"SE", 60.1, 18.6),
    (*b"SG", 1.4, 103.8), (*b"SH", -24.1, -10.0), (*b"SI", 46.2, 15.0), (*b"SJ", 77.6, 23.7),
    (*b"SK", 48.7, 19.7), (*b"SL", 8.5, -11.8), (*b"SM", 43.9, 12.5), (*b"SN", 14.5, -14.5),
    (*b"SO", 5.2, 46.2), (*b"SR", 3.9, -56.0), (*b"ST", 0.2, 6.6), (*b"SV", 13.8, -88.9),
    (*b"SY", 34.8, 39.0), (*b"SZ", -26.5, 31.5), (*b"TC", 21.7, -71.8), (*b"TD", 15.5, 18.7),
    (*b"TF", -49.3, 69.3), (*b"TG", 8.6, 0.8), (*b"TH", 15.9, 101.0), (*b"TJ", 38.9, 71.3),
    (*b"TK", -9.0, -171.9), (*b"TL", -8.9, 125.7), (*b"TM", 39.0, 59.6), (*b"TN", 33.9, 9.5),
    (*b"TO", -21.2, -175.2), (*b"TR", 39.0, 35.2), (*b"TT", 10.7, -61.2), (*b"TV", -7.1, 177.6),
    (*b"TW", 23.7, 121.0), (*b"TZ", -6.4, 34.9), (*b"UA", 48.4, 31.2), (*b"UG", 1.4, 32.3),
    (*b"US", 37.1, -95.7), (*b"UY", -32.5, -55.8), (*b"UZ", 41.4, 64.6), (*b"VA", 41.9, 12.5),
    (*b"VC", 13.0, -61.3), (*b"VE", 6.4, -66.6), (*b"VG", 18.4, -64.6), (*b"VI", 18.3, -64.9),
    (*b"VN", 14.1, 108.3), (*b"VU", -15.4, 167.0), (*b"WF", -13.8, -177.2),
    (*b"WS", -13.8, -172.1), (*b"XK", 42.6, 20.9), (*b"YE", 15.6, 48.5), (*b"YT", -12.8, 45.2),
    (*b"ZA", -30.6, 22.9), (*b"ZM", -13.1, 27.8), (*b"ZW", -19.0, 29.2),
];

/// Mean Earth radius, km.
const EARTH_RADIUS_KM: f32 = 6371.0;

/// A country code as two upper-case ASCII letters, or `None` for anything else (absent, `XX`-style
/// placeholders are accepted as codes but have no centroid).
pub fn country_code(value: &str) -> Option<[u8; 2]> {
    let b = value.trim().as_bytes();
    match b {
        [a, c] if a.is_ascii_alphabetic() && c.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), c.to_ascii_uppercase()])
        }
        _ => None,
    }
}

/// The centroid of a country, `(lat, lon)` in degrees.
pub fn centroid(code: [u8; 2]) -> Option<(f32, f32)> {
    CENTROIDS
        .binary_search_by(|(c, _, _)| c.cmp(&code))
        .ok()
        .and_then(|i| CENTROIDS.get(i))
        .map(|&(_, lat, lon)| (lat, lon))
}

/// Great-circle distance between two countries' centroids in km (haversine), when both are known.
pub fn distance_km(a: [u8; 2], b: [u8; 2]) -> Option<f32> {
    let (lat1, lon1) = centroid(a)?;
    let (lat2, lon2) = centroid(b)?;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    Some(2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(CENTROIDS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn codes_are_normalised() {
        assert_eq!(country_code(" no "), Some(*b"NO"));
        assert_eq!(country_code("NOR"), None);
        assert_eq!(country_code("1A"), None);
        assert_eq!(country_code(""), None);
    }

    #[test]
    fn distances_are_plausible() {
        // Oslo-ish to central Australia: about 14 000 km; Norway to Sweden: a few hundred.
        let far = distance_km(*b"NO", *b"AU").unwrap();
        assert!((13_000.0..16_000.0).contains(&far), "{far}");
        let near = distance_km(*b"NO", *b"SE").unwrap();
        assert!(near < 700.0, "{near}");
        assert_eq!(distance_km(*b"NO", *b"NO"), Some(0.0));
        assert_eq!(distance_km(*b"NO", *b"ZZ"), None);
    }
}
