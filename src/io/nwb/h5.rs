//! The HDF5 shapes of NWB's building blocks, written with the `hdf5` crate: typed groups
//! and datasets (`neurodata_type`, `namespace`, `object_id` attributes), text, VectorData
//! columns and their VectorIndex, DynamicTable groups and the cached specifications. The
//! layout follows what pynwb 4.2.0 writes (docs/traces.md, NWB export).

use hdf5::types::{VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Group, H5Type, Location, ObjectReference1};
use sha2::{Digest, Sha256};

macro_rules! spec {
    ($ns:literal, $v:literal, $name:literal) => {
        (
            $ns,
            $v,
            $name,
            include_str!(concat!("spec/", $ns, "/", $v, "/", $name, ".json")),
        )
    };
}

/// The NWB version of the cached core namespace (`spec/core/<version>`).
pub const NWB_VERSION: &str = "2.11.0";

/// Every cached specification text: (namespace, version, source, JSON text), as the pinned
/// pynwb caches them (made by scripts/nwb_spec.py, licences in src/io/nwb/spec/).
pub const SPECS: &[(&str, &str, &str, &str)] = &[
    spec!("core", "2.11.0", "namespace"),
    spec!("core", "2.11.0", "nwb.base"),
    spec!("core", "2.11.0", "nwb.behavior"),
    spec!("core", "2.11.0", "nwb.device"),
    spec!("core", "2.11.0", "nwb.ecephys"),
    spec!("core", "2.11.0", "nwb.epoch"),
    spec!("core", "2.11.0", "nwb.event"),
    spec!("core", "2.11.0", "nwb.file"),
    spec!("core", "2.11.0", "nwb.icephys"),
    spec!("core", "2.11.0", "nwb.image"),
    spec!("core", "2.11.0", "nwb.misc"),
    spec!("core", "2.11.0", "nwb.ogen"),
    spec!("core", "2.11.0", "nwb.ophys"),
    spec!("core", "2.11.0", "nwb.retinotopy"),
    spec!("hdmf-common", "1.10.0", "base"),
    spec!("hdmf-common", "1.10.0", "namespace"),
    spec!("hdmf-common", "1.10.0", "resources"),
    spec!("hdmf-common", "1.10.0", "sparse"),
    spec!("hdmf-common", "1.10.0", "table"),
    spec!("hdmf-experimental", "0.6.0", "experimental"),
    spec!("hdmf-experimental", "0.6.0", "namespace"),
];

/// Makes the `object_id` UUIDs of one file: version-4 layout, from SHA-256 of a per-file
/// seed and the object's path, so no two objects of a file share one.
pub struct Ids {
    seed: String,
}

impl Ids {
    pub fn new(seed: String) -> Self {
        Ids { seed }
    }

    pub fn uuid(&self, path: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.seed.as_bytes());
        h.update([0]);
        h.update(path.as_bytes());
        let mut b: [u8; 16] = h.finalize()[..16].try_into().unwrap_or([0; 16]);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let x: Vec<String> = b.iter().map(|v| format!("{v:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            x[..4].concat(),
            x[4..6].concat(),
            x[6..8].concat(),
            x[8..10].concat(),
            x[10..].concat()
        )
    }
}

pub fn vstr(s: &str) -> VarLenUnicode {
    s.replace('\0', " ").parse().unwrap_or_default()
}

fn vascii(s: &str) -> VarLenAscii {
    VarLenAscii::from_ascii(&s.replace(|c: char| !c.is_ascii() || c == '\0', "?"))
        .unwrap_or_default()
}

/// A scalar text attribute (variable-length UTF-8, as h5py writes them).
pub fn attr_str(loc: &Location, name: &str, v: &str) -> hdf5::Result<()> {
    loc.new_attr::<VarLenUnicode>()
        .create(name)?
        .write_scalar(&vstr(v))
}

pub fn attr<T: H5Type>(loc: &Location, name: &str, v: &T) -> hdf5::Result<()> {
    loc.new_attr::<T>().create(name)?.write_scalar(v)
}

/// An object reference attribute to `target` (a path in the file).
pub fn attr_ref(loc: &Location, name: &str, file: &Location, target: &str) -> hdf5::Result<()> {
    let r: ObjectReference1 = file.reference(target)?;
    loc.new_attr::<ObjectReference1>()
        .create(name)?
        .write_scalar(&r)
}

/// The attributes that make an object an NWB type: `namespace`, `neurodata_type`,
/// `object_id`.
pub fn typed(loc: &Location, ids: &Ids, namespace: &str, ty: &str) -> hdf5::Result<()> {
    attr_str(loc, "namespace", namespace)?;
    attr_str(loc, "neurodata_type", ty)?;
    attr_str(loc, "object_id", &ids.uuid(&loc.name()))
}

/// A scalar UTF-8 text dataset.
pub fn text(g: &Group, name: &str, v: &str) -> hdf5::Result<Dataset> {
    let ds = g.new_dataset::<VarLenUnicode>().create(name)?;
    ds.write_scalar(&vstr(v))?;
    Ok(ds)
}

/// A scalar ASCII text dataset (NWB's isodatetime fields, as pynwb writes them).
pub fn ascii(g: &Group, name: &str, v: &str) -> hdf5::Result<Dataset> {
    let ds = g.new_dataset::<VarLenAscii>().create(name)?;
    ds.write_scalar(&vascii(v))?;
    Ok(ds)
}

/// A 1-D ASCII text dataset.
pub fn ascii_list(g: &Group, name: &str, v: &[&str]) -> hdf5::Result<Dataset> {
    let data: Vec<VarLenAscii> = v.iter().map(|s| vascii(s)).collect();
    g.new_dataset_builder().with_data(&data[..]).create(name)
}

/// A text list attribute (a DynamicTable's `colnames`).
pub fn attr_str_list(loc: &Location, name: &str, v: &[String]) -> hdf5::Result<()> {
    let data: Vec<VarLenUnicode> = v.iter().map(|s| vstr(s)).collect();
    loc.new_attr_builder()
        .with_data(&data[..])
        .create(name)
        .map(|_| ())
}

/// A dataset with data of any shape (`shape` is its dimensions; the data row-major).
pub fn data<T: H5Type>(g: &Group, name: &str, v: &[T], shape: &[usize]) -> hdf5::Result<Dataset> {
    let ds = g.new_dataset::<T>().shape(shape).create(name)?;
    if !v.is_empty() {
        ds.write_raw(v)?;
    }
    Ok(ds)
}

/// A DynamicTable under construction: its group, column names in order, and row count.
pub struct Table<'a> {
    pub g: Group,
    ids: &'a Ids,
    cols: Vec<String>,
    rows: usize,
}

impl<'a> Table<'a> {
    /// A table group of type `ty` (`namespace`), with `description` and an `id` column of
    /// 0..rows.
    pub fn new(
        parent: &Group,
        name: &str,
        ids: &'a Ids,
        namespace: &str,
        ty: &str,
        description: &str,
        rows: usize,
    ) -> hdf5::Result<Self> {
        let g = parent.create_group(name)?;
        typed(&g, ids, namespace, ty)?;
        attr_str(&g, "description", description)?;
        let id: Vec<i64> = (0..rows as i64).collect();
        let ds = data(&g, "id", &id, &[rows])?;
        typed(&ds, ids, "hdmf-common", "ElementIdentifiers")?;
        Ok(Table {
            g,
            ids,
            cols: Vec::new(),
            rows,
        })
    }

    /// A VectorData column of one value (or one `inner`-shaped block) per row.
    pub fn column<T: H5Type>(
        &mut self,
        name: &str,
        description: &str,
        v: &[T],
        inner: &[usize],
    ) -> hdf5::Result<Dataset> {
        let mut shape = vec![self.rows];
        shape.extend_from_slice(inner);
        let ds = data(&self.g, name, v, &shape)?;
        typed(&ds, self.ids, "hdmf-common", "VectorData")?;
        attr_str(&ds, "description", description)?;
        self.cols.push(name.to_string());
        Ok(ds)
    }

    /// A text column.
    pub fn text_column(&mut self, name: &str, description: &str, v: &[&str]) -> hdf5::Result<()> {
        let data: Vec<VarLenUnicode> = v.iter().map(|s| vstr(s)).collect();
        let ds = self
            .g
            .new_dataset_builder()
            .with_data(&data[..])
            .create(name)?;
        typed(&ds, self.ids, "hdmf-common", "VectorData")?;
        attr_str(&ds, "description", description)?;
        self.cols.push(name.to_string());
        Ok(())
    }

    /// A ragged column: `values` (one block of `inner` shape per element) and its index
    /// `<name>_index` (end of each row's elements, uint64).
    pub fn ragged(
        &mut self,
        file: &Location,
        name: &str,
        description: &str,
        values: &Dataset,
        ends: &[u64],
    ) -> hdf5::Result<()> {
        typed(values, self.ids, "hdmf-common", "VectorData")?;
        attr_str(values, "description", description)?;
        let iname = format!("{name}_index");
        let ix = data(&self.g, &iname, ends, &[self.rows])?;
        typed(&ix, self.ids, "hdmf-common", "VectorIndex")?;
        attr_str(
            &ix,
            "description",
            &format!("Index for VectorData '{name}'"),
        )?;
        attr_ref(&ix, "target", file, &values.name())?;
        self.cols.push(name.to_string());
        Ok(())
    }

    /// Writes `colnames` (the columns in the order they were added).
    pub fn finish(self) -> hdf5::Result<Group> {
        attr_str_list(&self.g, "colnames", &self.cols)?;
        Ok(self.g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_version_4_uuids_distinct_per_object() {
        let ids = Ids::new("file".into());
        let a = ids.uuid("/units");
        let b = ids.uuid("/units/id");
        assert_ne!(a, b);
        assert_eq!(a, ids.uuid("/units"));
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn every_cached_namespace_is_valid_json_of_its_name() {
        for (ns, v, name, text) in SPECS {
            let j: serde_json::Value =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{ns}/{v}/{name}: {e}"));
            if *name == "namespace" {
                assert_eq!(j["namespaces"][0]["name"], *ns);
                assert_eq!(j["namespaces"][0]["version"], *v);
            }
        }
    }
}
