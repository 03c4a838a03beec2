//! `geoip`: MaxMind GeoIP2/GeoLite2 City lookups (`.mmdb`, read with the `maxminddb` crate) for
//! the public addresses in `details.sourceipaddress` and `details.destinationipaddress`, as
//! MozDef's geoip plugin wrote them: `details.sourceipgeolocation` (`city`, `country_code`,
//! `country_name`, `latitude`, `longitude`, `time_zone`) and `details.sourceipgeopoint`
//! (`"lat,lon"`, mapped as `geo_point` by the Elasticsearch templates); likewise
//! `destinationipgeolocation` / `destinationipgeopoint`.
//!
//! The database is read into memory once at load; a new database needs a restart. Private,
//! loopback and other non-public addresses are not looked up. Rampart never downloads a
//! database: point `database` at one you keep up to date (`geoipupdate`).

use super::ipfixup::{classify, details_mut, parse_ip};
use super::{Plugin, PluginEvent, Verdict};
use crate::error::ConnectorError;
use maxminddb::{geoip2, Reader};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// `type: geoip` options.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpConfig {
    /// The MaxMind City database (`GeoLite2-City.mmdb`). Required.
    pub database: PathBuf,
    /// Language of the city and country names. Default `en`.
    #[serde(default = "default_language")]
    pub language: String,
}

fn default_language() -> String {
    "en".into()
}

impl GeoIpConfig {
    /// Every problem.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.database.is_file() {
            p.push(format!("database: {} does not exist (download a GeoLite2-City.mmdb with geoipupdate; Rampart never downloads one)", self.database.display()));
        }
        if !["de", "en", "es", "fr", "ja", "pt-BR", "ru", "zh-CN"].contains(&self.language.as_str()) {
            p.push(format!("language: `{}` is not one of de, en, es, fr, ja, pt-BR, ru, zh-CN", self.language));
        }
        p
    }
}

/// The plugin.
pub struct GeoIp {
    reader: Reader<Vec<u8>>,
    language: String,
    terms: Vec<String>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp").field("database", &self.reader.metadata().database_type).finish()
    }
}

impl GeoIp {
    /// Opens the database.
    pub fn open(cfg: &GeoIpConfig) -> Result<GeoIp, ConnectorError> {
        let reader = Reader::open_readfile(&cfg.database).map_err(|e| ConnectorError::Plugin { plugin: "geoip".into(), message: format!("{}: not a readable MaxMind database: {e}", cfg.database.display()) })?;
        GeoIp::with_reader(reader, &cfg.language)
    }

    /// A plugin over database bytes already in memory.
    pub fn from_bytes(bytes: Vec<u8>, language: &str) -> Result<GeoIp, ConnectorError> {
        let reader = Reader::from_source(bytes).map_err(|e| ConnectorError::Plugin { plugin: "geoip".into(), message: format!("not a MaxMind database: {e}") })?;
        GeoIp::with_reader(reader, language)
    }

    fn with_reader(reader: Reader<Vec<u8>>, language: &str) -> Result<GeoIp, ConnectorError> {
        Ok(GeoIp { reader, language: language.to_string(), terms: vec!["sourceipaddress".into(), "destinationipaddress".into()] })
    }

    /// The location of one address, MozDef's shape, if the database knows it.
    pub fn locate(&self, ip: std::net::IpAddr) -> Option<Map<String, Value>> {
        let found = self.reader.lookup(ip).ok()?;
        let city: geoip2::City = found.decode().ok()??;
        let name = |n: &geoip2::Names| -> Option<String> {
            let v = match self.language.as_str() {
                "de" => n.german,
                "es" => n.spanish,
                "fr" => n.french,
                "ja" => n.japanese,
                "pt-BR" => n.brazilian_portuguese,
                "ru" => n.russian,
                "zh-CN" => n.simplified_chinese,
                _ => n.english,
            };
            v.or(n.english).map(str::to_string)
        };
        let mut out = Map::with_capacity(6);
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                out.insert(k.to_string(), v);
            }
        };
        put("city", name(&city.city.names).map(Value::String));
        put("country_code", city.country.iso_code.map(|s| json!(s)));
        put("country_name", name(&city.country.names).map(Value::String));
        put("latitude", city.location.latitude.map(|x| json!(x)));
        put("longitude", city.location.longitude.map(|x| json!(x)));
        put("time_zone", city.location.time_zone.map(|s| json!(s)));
        (!out.is_empty()).then_some(out)
    }
}

impl Plugin for GeoIp {
    fn name(&self) -> &str {
        "geoip"
    }
    fn terms(&self) -> Vec<String> {
        self.terms.clone()
    }
    fn priority(&self) -> i32 {
        20
    }
    fn process(&self, e: &mut PluginEvent<'_>) -> Verdict {
        let Some(details) = details_mut(e.doc) else { return Verdict::Keep };
        for (field, point, location) in [("sourceipaddress", "sourceipgeopoint", "sourceipgeolocation"), ("destinationipaddress", "destinationipgeopoint", "destinationipgeolocation")] {
            let Some(ip) = details.get(field).and_then(Value::as_str).and_then(parse_ip) else { continue };
            if classify(ip) != "public" {
                continue;
            }
            let Some(loc) = self.locate(ip) else { continue };
            if let (Some(lat), Some(lon)) = (loc.get("latitude").and_then(Value::as_f64), loc.get("longitude").and_then(Value::as_f64)) {
                details.insert(point.to_string(), Value::String(format!("{lat},{lon}")));
            }
            details.insert(location.to_string(), Value::Object(loc));
        }
        Verdict::Keep
    }
}

/// Builds small MaxMind City databases (IPv4 only, 24-bit records) for tests and benches, so
/// that no test needs a downloaded database. It writes the format from its specification:
/// a binary search tree, 16 zero bytes, the data section, then the metadata after
/// `\xAB\xCD\xEFMaxMind.com`.
pub mod testdb {
    use std::net::Ipv4Addr;

    /// One network and the place it is in.
    #[derive(Debug, Clone)]
    pub struct Place {
        /// The network address.
        pub net: Ipv4Addr,
        /// Its prefix length.
        pub prefix: u8,
        /// English city name.
        pub city: &'static str,
        /// ISO country code.
        pub country_code: &'static str,
        /// English country name.
        pub country: &'static str,
        /// Latitude.
        pub latitude: f64,
        /// Longitude.
        pub longitude: f64,
        /// IANA time zone.
        pub time_zone: &'static str,
    }

    /// A control byte: type (extended types > 7 as type 0 plus a type byte), then the size.
    fn ctrl(out: &mut Vec<u8>, ty: u8, size: usize) {
        let (t, ext) = if ty > 7 { (0u8, Some(ty - 7)) } else { (ty, None) };
        let (bits, extra): (u8, Vec<u8>) = if size < 29 {
            (size as u8, Vec::new())
        } else if size < 285 {
            (29, vec![(size - 29) as u8])
        } else {
            let s = size - 285;
            (30, vec![(s >> 8) as u8, s as u8])
        };
        out.push((t << 5) | bits);
        out.extend(ext);
        out.extend(extra);
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        ctrl(out, 2, s.len());
        out.extend_from_slice(s.as_bytes());
    }

    fn double(out: &mut Vec<u8>, x: f64) {
        ctrl(out, 3, 8);
        out.extend_from_slice(&x.to_be_bytes());
    }

    fn uint(out: &mut Vec<u8>, ty: u8, x: u64) {
        let bytes = x.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        ctrl(out, ty, 8 - skip);
        out.extend_from_slice(&bytes[skip..]);
    }

    fn map(out: &mut Vec<u8>, n: usize) {
        ctrl(out, 7, n);
    }

    fn names(out: &mut Vec<u8>, en: &str) {
        map(out, 1);
        string(out, "names");
        map(out, 1);
        string(out, "en");
        string(out, en);
    }

    fn record(p: &Place) -> Vec<u8> {
        let mut o = Vec::new();
        map(&mut o, 3);
        string(&mut o, "city");
        names(&mut o, p.city);
        string(&mut o, "country");
        map(&mut o, 2);
        string(&mut o, "iso_code");
        string(&mut o, p.country_code);
        string(&mut o, "names");
        map(&mut o, 1);
        string(&mut o, "en");
        string(&mut o, p.country);
        string(&mut o, "location");
        map(&mut o, 3);
        string(&mut o, "latitude");
        double(&mut o, p.latitude);
        string(&mut o, "longitude");
        double(&mut o, p.longitude);
        string(&mut o, "time_zone");
        string(&mut o, p.time_zone);
        o
    }

    #[derive(Clone, Copy)]
    enum Rec {
        Empty,
        Node(usize),
        Data(usize),
    }

    /// The database bytes for `places`.
    pub fn build(places: &[Place]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
        for p in places {
            let offset = data.len();
            data.extend(record(p));
            let bits = u32::from(p.net);
            let mut node = 0;
            for depth in 0..p.prefix {
                let bit = ((bits >> (31 - depth)) & 1) as usize;
                if depth + 1 == p.prefix {
                    nodes[node][bit] = Rec::Data(offset);
                } else {
                    node = match nodes[node][bit] {
                        Rec::Node(n) => n,
                        _ => {
                            nodes.push([Rec::Empty, Rec::Empty]);
                            let n = nodes.len() - 1;
                            nodes[node][bit] = Rec::Node(n);
                            n
                        }
                    };
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for n in &nodes {
            for r in n {
                let v = match *r {
                    Rec::Empty => count,
                    Rec::Node(i) => i,
                    Rec::Data(off) => count + 16 + off,
                };
                out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
            }
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend(data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        map(&mut out, 9);
        string(&mut out, "binary_format_major_version");
        uint(&mut out, 5, 2);
        string(&mut out, "binary_format_minor_version");
        uint(&mut out, 5, 0);
        string(&mut out, "build_epoch");
        uint(&mut out, 9, 1_700_000_000);
        string(&mut out, "database_type");
        string(&mut out, "Rampart-Test-City");
        string(&mut out, "description");
        map(&mut out, 1);
        string(&mut out, "en");
        string(&mut out, "Rampart test database");
        string(&mut out, "ip_version");
        uint(&mut out, 5, 4);
        string(&mut out, "languages");
        ctrl(&mut out, 11, 1);
        string(&mut out, "en");
        string(&mut out, "node_count");
        uint(&mut out, 6, count as u64);
        string(&mut out, "record_size");
        uint(&mut out, 5, 24);
        out
    }

    /// Three places: 8.8.8.0/24 in Mountain View, 81.2.69.0/24 in London and 203.0.113.0/24 in
    /// Sydney (a documentation range: the plugin skips it as non-public, which tests use).
    pub fn sample() -> Vec<u8> {
        build(&[
            Place { net: Ipv4Addr::new(8, 8, 8, 0), prefix: 24, city: "Mountain View", country_code: "US", country: "United States", latitude: 37.386, longitude: -122.0838, time_zone: "America/Los_Angeles" },
            Place { net: Ipv4Addr::new(81, 2, 69, 0), prefix: 24, city: "London", country_code: "GB", country: "United Kingdom", latitude: 51.5142, longitude: -0.0931, time_zone: "Europe/London" },
            Place { net: Ipv4Addr::new(203, 0, 113, 0), prefix: 24, city: "Sydney", country_code: "AU", country: "Australia", latitude: -33.8688, longitude: 151.209, time_zone: "Australia/Sydney" },
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::Route;

    fn plugin() -> GeoIp {
        GeoIp::from_bytes(testdb::sample(), "en").unwrap()
    }

    #[test]
    fn the_test_database_reads_back() {
        let g = plugin();
        let loc = g.locate("81.2.69.160".parse().unwrap()).unwrap();
        assert_eq!(loc["city"], "London");
        assert_eq!(loc["country_code"], "GB");
        assert_eq!(loc["time_zone"], "Europe/London");
        assert!(g.locate("9.9.9.9".parse().unwrap()).is_none());
    }

    #[test]
    fn public_addresses_get_mozdef_geolocation_and_geopoint() {
        let g = plugin();
        let Value::Object(mut doc) = json!({"summary": "Failed password for root from 81.2.69.160 port 2222 ssh2", "details": {"sourceipaddress": "81.2.69.160", "destinationipaddress": "8.8.8.8"}}) else { unreachable!() };
        g.process(&mut PluginEvent { doc: &mut doc, route: &mut Route::default() });
        let d = &doc["details"];
        assert_eq!(d["sourceipgeolocation"]["city"], "London");
        assert_eq!(d["sourceipgeolocation"]["country_name"], "United Kingdom");
        assert_eq!(d["sourceipgeopoint"], "51.5142,-0.0931");
        assert_eq!(d["destinationipgeolocation"]["country_code"], "US");
        assert_eq!(d["destinationipgeopoint"], "37.386,-122.0838");
    }

    #[test]
    fn private_unknown_and_documentation_addresses_are_left_alone() {
        let g = plugin();
        let Value::Object(mut doc) = json!({"details": {"sourceipaddress": "10.0.0.5", "destinationipaddress": "203.0.113.7"}}) else { unreachable!() };
        let before = doc.clone();
        g.process(&mut PluginEvent { doc: &mut doc, route: &mut Route::default() });
        assert_eq!(doc, before);
        let Value::Object(mut doc) = json!({"details": {"sourceipaddress": "9.9.9.9"}}) else { unreachable!() };
        g.process(&mut PluginEvent { doc: &mut doc, route: &mut Route::default() });
        assert!(doc["details"].get("sourceipgeolocation").is_none());
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_load_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.mmdb");
        std::fs::write(&p, b"not a database").unwrap();
        let e = GeoIp::open(&GeoIpConfig { database: p.clone(), language: "en".into() }).unwrap_err().to_string();
        assert!(e.contains("x.mmdb") && e.contains("not a readable MaxMind database"), "{e}");
    }
}
